package appinsightsexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// aiExporter posts envelopes to the Application Insights track endpoint
// inside the push function: a push returns only when the service has
// answered, so the exporterhelper queue (in memory or persistent) and its
// retry keep everything not yet accepted.
type aiExporter struct {
	cfg      *Config
	set      exporter.Settings
	tgt      target
	host     string // ingestion host, for messages
	gzip     bool
	client   *http.Client
	encoders sync.Pool
}

func newExporter(cfg *Config, set exporter.Settings) (*aiExporter, error) {
	tgt, err := cfg.target()
	if err != nil {
		return nil, err
	}
	e := &aiExporter{cfg: cfg, set: set, tgt: tgt, gzip: cfg.Compression == configcompression.TypeGzip}
	if u, err := url.Parse(tgt.url); err == nil {
		e.host = u.Host
	}
	e.encoders.New = func() any { return newEncoder(tgt, set.BuildInfo.Version) }
	return e, nil
}

func (e *aiExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
	if err != nil {
		return err
	}
	e.client = client
	e.set.Logger.Info("Sending to Application Insights", zap.String("url", e.tgt.url))
	return nil
}

func (e *aiExporter) shutdown(context.Context) error {
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	return nil
}

func (e *aiExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	enc := e.encoders.Get().(*encoder)
	defer e.release(enc)
	enc.encodeTraces(td)
	return e.send(ctx, enc, func(err error, failed []origin) error {
		return consumererror.NewTraces(err, tracesSubset(td, failed))
	})
}

func (e *aiExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	enc := e.encoders.Get().(*encoder)
	defer e.release(enc)
	enc.encodeLogs(ld)
	return e.send(ctx, enc, func(err error, failed []origin) error {
		return consumererror.NewLogs(err, logsSubset(ld, failed))
	})
}

func (e *aiExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	enc := e.encoders.Get().(*encoder)
	defer e.release(enc)
	enc.encodeMetrics(md)
	return e.send(ctx, enc, func(err error, failed []origin) error {
		return consumererror.NewMetrics(err, metricsSubset(md, failed))
	})
}

func (e *aiExporter) release(enc *encoder) {
	if enc.buf.Cap() > 16<<20 { // do not keep huge buffers around
		return
	}
	enc.reset()
	e.encoders.Put(enc)
}

// trackResponse is the body of the track endpoint's answer.
type trackResponse struct {
	ItemsReceived int         `json:"itemsReceived"`
	ItemsAccepted int         `json:"itemsAccepted"`
	Errors        []itemError `json:"errors"`
}

type itemError struct {
	Index      int    `json:"index"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// retryable are the statuses (of the response, or of an item in a 206)
// worth sending again: timeout, throttling (429, and 439 "too many requests
// over extended time"), and server errors.
func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, 439,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// send posts the encoder's envelopes and turns the answer into the error
// exporterhelper acts on:
//   - 200 (or 206 with every item accepted): nil;
//   - 206 with some items refused: the items refused with a retryable status
//     (408, 429, 439, 500, 502, 503, 504) are returned, through partial, as a
//     signal error carrying just their pdata, so the retry sends only them;
//     items refused for good are logged and dropped;
//   - 408, 429, 439, 5xx, network errors: retryable, with the Retry-After
//     delay (seconds or HTTP date) through exporterhelper.NewThrottleRetry;
//   - 400 and any other status: consumererror.NewPermanent.
func (e *aiExporter) send(ctx context.Context, enc *encoder, partial func(error, []origin) error) error {
	if enc.skipped > 0 {
		e.set.Logger.Warn("Dropping items that cannot be sent to Application Insights (non-finite values or not encodable)",
			zap.Int("items", enc.skipped), zap.NamedError("last_error", enc.skipErr))
	}
	n := len(enc.origins)
	if n == 0 {
		return nil
	}
	a, err := e.post(ctx, enc.buf.Bytes(), n)
	if err != nil {
		return err
	}
	switch {
	case a.status == http.StatusOK:
		return nil
	case a.status == http.StatusPartialContent && a.parsed:
		return e.partlyAccepted(a, enc.origins, partial)
	case a.status == http.StatusPartialContent:
		return fmt.Errorf("ingestion answered 206 with an unreadable body; sending all %d envelopes again", n)
	}
	return e.refused(a, n)
}

// trackAnswer is the track endpoint's reply to one post.
type trackAnswer struct {
	status   int
	text     string // the status line, for messages
	raw      []byte // the start of the body
	tr       trackResponse
	parsed   bool // raw is a trackResponse
	delay    time.Duration
	hasDelay bool // Retry-After was given
}

// throttle makes err wait for the answer's Retry-After, when it has one.
func (a trackAnswer) throttle(err error) error {
	if a.hasDelay {
		return exporterhelper.NewThrottleRetry(err, a.delay)
	}
	return err
}

// post sends body (n envelopes, gzipped when so configured) and reads the
// answer.
func (e *aiExporter) post(ctx context.Context, body []byte, n int) (trackAnswer, error) {
	var compressed bytes.Buffer
	if e.gzip {
		compressed.Grow(len(body) / 4)
		if err := gzipTo(&compressed, body); err != nil {
			return trackAnswer{}, fmt.Errorf("gzip %d envelopes: %w", n, err)
		}
		body = compressed.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.tgt.url, bytes.NewReader(body))
	if err != nil {
		return trackAnswer{}, consumererror.NewPermanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-json-stream")
	req.Header.Set("Accept", "application/json")
	if e.gzip {
		// Set here, so confighttp's own compression leaves the body alone.
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return trackAnswer{}, fmt.Errorf("post %d envelopes to Application Insights at %s: %w", n, e.host, redactURLError(err))
	}
	defer resp.Body.Close()
	a := trackAnswer{status: resp.StatusCode, text: resp.Status}
	a.raw, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a.parsed = json.Unmarshal(a.raw, &a.tr) == nil
	a.delay, a.hasDelay = retryAfter(resp.Header.Get("Retry-After"))
	return a, nil
}

// partlyAccepted handles a 206: the items refused with a retryable status
// go back, through partial, to be sent again; those refused for good are
// logged and dropped.
func (e *aiExporter) partlyAccepted(a trackAnswer, origins []origin, partial func(error, []origin) error) error {
	n := len(origins)
	var again []origin
	var dropped []itemError
	for _, ie := range a.tr.Errors {
		if ie.Index < 0 || ie.Index >= n {
			continue
		}
		if retryable(ie.StatusCode) {
			if origins[ie.Index].s < 0 { // _OTELRESOURCE_: sent again with the next batch anyway
				continue
			}
			again = append(again, origins[ie.Index])
		} else {
			dropped = append(dropped, ie)
		}
	}
	if len(dropped) > 0 {
		e.set.Logger.Error("Application Insights refused items for good; they are dropped",
			zap.Int("dropped", len(dropped)), zap.Int("sent", n),
			zap.Int("first_status", dropped[0].StatusCode), zap.String("first_message", dropped[0].Message))
	}
	if len(again) == 0 {
		return nil
	}
	first := firstRetryable(a.tr.Errors)
	err := fmt.Errorf("ingestion accepted %d of %d envelopes; %d will be sent again (first: %d %s)",
		a.tr.ItemsAccepted, n, len(again), first.StatusCode, first.Message)
	return a.throttle(partial(err, again))
}

// refused turns an answer that accepted nothing into a retryable or a
// permanent error.
func (e *aiExporter) refused(a trackAnswer, n int) error {
	err := fmt.Errorf("ingestion at %s answered %s to %d envelopes%s", e.host, a.text, n, describe(a.tr, a.parsed, a.raw))
	switch {
	case retryable(a.status) || a.status >= 500:
		return a.throttle(err)
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return consumererror.NewPermanent(fmt.Errorf("%w (the resource may require Microsoft Entra ID authentication, which this exporter does not do)", err))
	default:
		return consumererror.NewPermanent(err)
	}
}

func firstRetryable(errs []itemError) itemError {
	for _, ie := range errs {
		if retryable(ie.StatusCode) {
			return ie
		}
	}
	return itemError{}
}

// describe is a short account of an error answer: the first item error, or
// the start of the body.
func describe(tr trackResponse, parsed bool, raw []byte) string {
	if parsed && len(tr.Errors) > 0 {
		return fmt.Sprintf(": item errors: %d, first: %d %s", len(tr.Errors), tr.Errors[0].StatusCode, tr.Errors[0].Message)
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return ": " + s
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// redactURLError keeps the cause of a transport error without the URL's
// query, which could hold a credential if one was put in endpoint.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
