package appinsightsexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultIngestionEndpoint is the global ingestion endpoint, used when the
// connection string names neither IngestionEndpoint nor EndpointSuffix.
const DefaultIngestionEndpoint = "https://dc.services.visualstudio.com"

// maxConnectionStringLength is the documented maximum length of a connection string.
const maxConnectionStringLength = 4096

// connectionString is a parsed Application Insights connection string.
type connectionString struct {
	InstrumentationKey string
	IngestionEndpoint  string // scheme://host[:port][/path], no trailing slash
	ApplicationID      string // optional; sent as microsoft.applicationId on the _OTELRESOURCE_ metric
}

// parseConnectionString parses "Key1=Value1;Key2=Value2" per the documented
// Application Insights format:
//   - keys are case-insensitive, values are kept as written, blank segments
//     (a trailing ";") are ignored and a key may appear only once;
//   - InstrumentationKey is required and is a GUID;
//   - Authorization, if present, must be "ikey" (the only kind supported here);
//   - IngestionEndpoint, when present, is the ingestion URL; otherwise
//     EndpointSuffix (e.g. applicationinsights.azure.cn) builds
//     https://dc.<suffix>, or https://<Location>.dc.<suffix> with Location;
//     otherwise the global https://dc.services.visualstudio.com is used;
//   - ApplicationId is kept for the _OTELRESOURCE_ metric;
//   - other keys (LiveEndpoint, ProfilerEndpoint, ...) are ignored.
//
// Error messages name keys and positions, never values: the whole string is a secret.
func parseConnectionString(s string) (connectionString, error) {
	var cs connectionString
	if strings.TrimSpace(s) == "" {
		return cs, errors.New("connection_string is empty")
	}
	if len(s) > maxConnectionStringLength {
		return cs, fmt.Errorf("connection_string is %d characters long, more than the maximum %d", len(s), maxConnectionStringLength)
	}
	kv := map[string]string{}
	for i, seg := range strings.Split(s, ";") {
		if strings.TrimSpace(seg) == "" {
			continue
		}
		k, v, ok := strings.Cut(seg, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" {
			return cs, fmt.Errorf("connection_string: segment %d is not Key=Value (expected InstrumentationKey=<guid>;IngestionEndpoint=<url>)", i+1)
		}
		if _, dup := kv[k]; dup {
			return cs, fmt.Errorf("connection_string: key %q appears more than once", k)
		}
		kv[k] = v
	}
	cs.InstrumentationKey = kv["instrumentationkey"]
	if cs.InstrumentationKey == "" {
		return cs, errors.New("connection_string has no InstrumentationKey (expected InstrumentationKey=<guid>;IngestionEndpoint=<url>)")
	}
	if !isGUID(cs.InstrumentationKey) {
		return cs, errors.New("connection_string: InstrumentationKey is not a GUID (00000000-0000-0000-0000-000000000000 form)")
	}
	cs.ApplicationID = kv["applicationid"]
	if a, ok := kv["authorization"]; ok && !strings.EqualFold(a, "ikey") {
		return cs, errors.New("connection_string: only Authorization=ikey is supported (Microsoft Entra ID ingestion is not)")
	}
	switch {
	case kv["ingestionendpoint"] != "":
		ep, err := normalizeEndpoint(kv["ingestionendpoint"])
		if err != nil {
			return cs, fmt.Errorf("connection_string: IngestionEndpoint %w", err)
		}
		cs.IngestionEndpoint = ep
	case kv["endpointsuffix"] != "":
		suffix := strings.Trim(kv["endpointsuffix"], "./")
		host := "dc." + suffix
		if loc := strings.Trim(kv["location"], "./"); loc != "" {
			host = loc + "." + host
		}
		ep, err := normalizeEndpoint("https://" + host)
		if err != nil {
			return cs, fmt.Errorf("connection_string: EndpointSuffix/Location %w", err)
		}
		cs.IngestionEndpoint = ep
	default:
		cs.IngestionEndpoint = DefaultIngestionEndpoint
	}
	return cs, nil
}

// normalizeEndpoint checks that ep is an absolute http(s) URL without query or
// fragment and returns it without a trailing slash.
func normalizeEndpoint(ep string) (string, error) {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("is not an absolute http(s) URL like https://<region>.in.applicationinsights.azure.com/")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// isGUID reports whether s is 8-4-4-4-12 hexadecimal digits.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}
