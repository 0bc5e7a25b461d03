package modeldatareceiver

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/bodybudget"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

// The receiver's limits, by the setting that sets each: a request over one
// is refused and counted in otelcol_modeldata_requests_refused, its limit
// attribute naming the setting.
const (
	limitBytesInFlight = "max_bytes_in_flight"
	limitBodyStall     = "body_stall_timeout"
	limitReadTimeout   = "read_timeout"
	limitBodySize      = "max_request_body_size"
	limitRows          = "max_rows_per_request"
	limitColumns       = "max_columns"
	limitValues        = "max_values_per_request"
)

// limitAttrs are the limit attribute of each limit, made once: a refusal
// under overload costs no allocation.
var limitAttrs = func() map[string]metric.AddOption {
	m := map[string]metric.AddOption{}
	for _, l := range []string{limitBytesInFlight, limitBodyStall, limitReadTimeout, limitBodySize, limitRows, limitColumns, limitValues} {
		m[l] = metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", l)))
	}
	return m
}()

// countRefusal counts err in otelcol_modeldata_requests_refused when one
// of the receiver's limits refused the request.
func countRefusal(ctx context.Context, tb *metadata.TelemetryBuilder, err error) {
	var re *requestError
	if errors.As(err, &re) && re.limit != "" {
		tb.ModeldataRequestsRefused.Add(ctx, 1, limitAttrs[re.limit])
	}
}

// refuse answers a request refused with err (its status and message,
// written by write: JSON or text) and counts it when a limit refused it.
func (r *modeldataReceiver) refuse(w http.ResponseWriter, req *http.Request, err error, write func(http.ResponseWriter, int, string)) {
	countRefusal(req.Context(), r.telemetry, err)
	write(w, statusOf(err), err.Error())
}

// refuser is refuse with its writer bound, for the body budget's refusals.
func (r *modeldataReceiver) refuser(write func(http.ResponseWriter, int, string)) func(http.ResponseWriter, *http.Request, *bodybudget.Refusal) {
	return func(w http.ResponseWriter, req *http.Request, rf *bodybudget.Refusal) {
		r.refuse(w, req, bodyError(rf), write)
	}
}

// bodyError is the refusal of a body that could not be read: over
// max_request_body_size (confighttp's limit on what is read, also after
// decompression), over max_bytes_in_flight, stalled past
// body_stall_timeout, not all there at the server's read_timeout, or
// broken.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooLarge(limitBodySize, "the body is over max_request_body_size (%d bytes)", tooBig.Limit)
	}
	var refused *bodybudget.Refusal
	if errors.As(err, &refused) {
		// Validate keeps every route's max_request_body_size within the
		// budget: a refused body is one that does not fit now, or stalled.
		limit := limitBytesInFlight
		switch refused.Reason {
		case bodybudget.Stalled:
			limit = limitBodyStall
		case bodybudget.ReadTimeout:
			limit = limitReadTimeout
		}
		return &requestError{status: refused.StatusCode(), limit: limit, msg: refused.Error()}
	}
	return badRequest("reading the body: %v", err)
}
