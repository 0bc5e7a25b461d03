package contract

import (
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// ColQuarantineReason is the extra last column of quarantined rows: why the
// row could not be placed.
const ColQuarantineReason = "$aml_quarantine_reason"

// DatePath is <yyyy>/<mm>/<dd>[/<hh>] of a UTC time: the date folders of
// Dir and of the quarantine folder.
func DatePath(t time.Time, hourly bool) string {
	if hourly {
		return t.UTC().Format("2006/01/02/15")
	}
	return t.UTC().Format("2006/01/02")
}

// QuarantineDir is the folder of quarantined rows of time t under root.
func QuarantineDir(root string, t time.Time, hourly bool) string {
	return root + "/" + DatePath(t, hourly)
}

// QuarantineReason says why a row with these parts cannot be placed in its
// folder (and goes to quarantine), or "" when it can.
func QuarantineReason(p PathParts) string {
	if p.ModelVersion == "" {
		return "model version is missing"
	}
	if err := p.Validate(); err != nil {
		return err.Error()
	}
	return ""
}

// WithResource is p with the subscription, resource group, workspace and
// webservice of the resource attributes that are set and not empty: the
// resource overrides the configured parts.
func (p PathParts) WithResource(attrs pcommon.Map) PathParts {
	for _, o := range []struct {
		attr string
		dst  *string
	}{
		{AttrSubscriptionID, &p.SubscriptionID}, {AttrResourceGroup, &p.ResourceGroup},
		{AttrWorkspace, &p.Workspace}, {AttrWebservice, &p.Webservice},
	} {
		if v, ok := attrs.Get(o.attr); ok && v.AsString() != "" {
			*o.dst = v.AsString()
		}
	}
	return p
}

// RequestIDOrNil is the request id cell: NilRequestID when it is unknown.
func RequestIDOrNil(id string) string {
	if id == "" {
		return NilRequestID
	}
	return id
}

// BodyInOrder reports whether the body is a map of exactly the declared
// names in declared order: then the columns are the body's keys as they
// stand, and its cells need no lookup by name.
func BodyInOrder(declared []string, body pcommon.Value) bool {
	if body.Type() != pcommon.ValueTypeMap || body.Map().Len() != len(declared) {
		return false
	}
	i := 0
	for k := range body.Map().All() {
		if k != declared[i] {
			return false
		}
		i++
	}
	return true
}

// ColumnNames is the column order of a row: the declared feature order, then
// body keys not declared, sorted, without duplicates. It returns declared
// itself when nothing changes. Feature sets are small, so membership is a
// linear scan.
func ColumnNames(declared []string, body pcommon.Value) []string {
	names := declared
	for i, n := range declared {
		if slices.Contains(declared[:i], n) { // a duplicate: copy without them
			names = make([]string, 0, len(declared))
			for _, n := range declared {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			break
		}
	}
	if body.Type() != pcommon.ValueTypeMap {
		return names
	}
	var extra []string
	for k := range body.Map().All() {
		if !slices.Contains(names, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return names
	}
	slices.Sort(extra)
	return append(names[:len(names):len(names)], extra...)
}
