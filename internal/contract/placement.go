package contract

import (
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
