package modeldatareceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/bodybudget"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/pieces"
	"github.com/otelcol-modeldata/otelcol-modeldata/receiver/modeldatareceiver/internal/metadata"
)

const (
	collectPath = "/v1/collect"
	// defaultRetryAfter is the Retry-After of a 429 or 503 whose cause
	// names no delay, so clients back off.
	defaultRetryAfter = "1"
)

type modeldataReceiver struct {
	cfg      *Config
	settings receiver.Settings
	next     consumer.Logs
	obsrecv  *receiverhelper.ObsReport
	policy   policy
	limits   limits
	budget   *bodybudget.Budget
	pool     sync.Pool
	now      func() time.Time
	// pieceRetry is how long a request's later pieces are offered again
	// when the pipeline refuses them for a reason that passes.
	pieceRetry time.Duration
	// idem answers repeats of accepted requests (nil: off).
	idem      *idempotencyWindow
	telemetry *metadata.TelemetryBuilder

	servers  []*http.Server
	shutdown sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*modeldataReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &modeldataReceiver{
		telemetry:  telemetry,
		idem:       newIdempotencyWindow(cfg.Idempotency, set.Logger, telemetry),
		cfg:        cfg,
		settings:   set,
		next:       next,
		obsrecv:    obsrecv,
		policy:     newPolicy(cfg),
		limits:     limits{maxRows: cfg.MaxRowsPerRequest, maxColumns: cfg.MaxColumns, maxValues: cfg.MaxValuesPerRequest},
		now:        time.Now,
		pieceRetry: pieces.RetryFor,
	}
	r.budget = bodybudget.New(cfg.MaxBytesInFlight, time.Second, cfg.BodyStallTimeout)
	r.pool.New = func() any { return newDecoder(r.limits) }
	return r, nil
}

// pooledNodes caps the nodes a pooled decoder keeps: the storage of a big
// request goes back to the garbage collector, not to the pool.
const pooledNodes = 1 << 16

func (r *modeldataReceiver) getDecoder() *decoder {
	d := r.pool.Get().(*decoder)
	d.reset()
	return d
}

func (r *modeldataReceiver) putDecoder(d *decoder) {
	if cap(d.table.nodes) > pooledNodes || cap(d.table.cells) > pooledNodes {
		return
	}
	// The nodes hold substrings of the request's body: drop them, so a
	// pooled decoder does not keep the last body alive.
	clear(d.table.nodes[:cap(d.table.nodes)])
	clear(d.table.columns[:cap(d.table.columns)])
	clear(d.names[:cap(d.names)])
	d.meta = meta{}
	r.pool.Put(d)
}

func (r *modeldataReceiver) Start(ctx context.Context, host component.Host) error {
	if r.idem != nil {
		if err := r.idem.open(ctx, host, r.settings.ID); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle(collectPath, r.idem.wrap(http.HandlerFunc(r.handleCollect)))
	mux.Handle(batchPath, r.idem.wrap(http.HandlerFunc(r.handleCollectBatch)))
	if err := r.serve(ctx, host, &r.cfg.ServerConfig, r.budget.Wrap(mux, r.refuser(writeJSONError))); err != nil {
		return err
	}
	if v2 := r.cfg.AzureMLV2.Get(); v2 != nil {
		h := &v2Handler{r: r, cfg: v2}
		v2mux := http.NewServeMux()
		v2mux.Handle(v2Path, r.idem.wrap(h))
		if err := r.serve(ctx, host, &v2.ServerConfig, r.budget.Wrap(v2mux, r.refuser(writeTextError))); err != nil {
			return errors.Join(err, r.Shutdown(ctx))
		}
	}
	return nil
}

func (r *modeldataReceiver) serve(ctx context.Context, host component.Host, cfg *confighttp.ServerConfig, handler http.Handler) error {
	if r.cfg.MaxBytesInFlight == 0 && len(cfg.Middlewares) == 0 {
		// max_bytes_in_flight: 0 is meant for servers that share a
		// request_budget; one left without it holds any number of bodies.
		r.settings.Logger.Warn("request bodies held at once are not bounded on this address: max_bytes_in_flight is 0 and it has no middlewares; add middlewares: [{id: request_budget}] to it, or set max_bytes_in_flight",
			zap.String("endpoint", cfg.NetAddr.Endpoint))
	}
	srv, err := cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, handler)
	if err != nil {
		return err
	}
	ln, err := cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("modeldata receiver: %w", err)
	}
	r.settings.Logger.Info("modeldata receiver listening", zap.String("address", ln.Addr().String()))
	r.servers = append(r.servers, srv)
	r.shutdown.Add(1)
	go func() {
		defer r.shutdown.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (r *modeldataReceiver) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range r.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	r.shutdown.Wait()
	r.servers = nil
	errs = append(errs, r.idem.close(ctx))
	r.telemetry.Shutdown()
	return errors.Join(errs...)
}

// collectResponse is the answer to a collect request: the ids the rows
// carry, for the caller to attach to its predictions.
type collectResponse struct {
	Accepted         int      `json:"accepted"`
	Skipped          int      `json:"skipped,omitempty"`
	CorrelationID    string   `json:"correlation_id"`
	ScoringTimestamp string   `json:"scoring_timestamp"`
	RequestID        string   `json:"request_id"`
	CorrelationIDs   []string `json:"correlation_ids,omitempty"`
}

func (r *modeldataReceiver) handleCollect(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed: POST a collect request")
		return
	}
	format, err := collectFormat(req.Header.Get("Content-Type"))
	if err != nil {
		writeJSONError(w, statusOf(err), err.Error())
		return
	}
	d := r.getDecoder()
	logs := r.builder(req.Context(), format)
	resp, err := r.decodeCollect(d, req, format, logs)
	r.putDecoder(d)
	if err != nil {
		r.settings.Logger.Debug("collect request refused", zap.Error(err))
		r.refuse(w, req, err, writeJSONError)
		return
	}
	if err := logs.finish(); err != nil {
		writeConsumeError(w, err, writeJSONError)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func collectFormat(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || contentType == "" {
		return "", &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q: send application/json or text/csv (curl: -H 'Content-Type: application/json')", contentType)}
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return "", &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("charset %q: only utf-8 is accepted", cs)}
	}
	switch mt {
	case "application/json":
		return "json", nil
	case "text/csv", "application/csv":
		return "csv", nil
	}
	return "", &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q is not accepted: send application/json or text/csv", mt)}
}

// decodeCollect reads, checks and converts one collect request into logs.
// Nothing is emitted unless the whole request is valid.
func (r *modeldataReceiver) decodeCollect(d *decoder, req *http.Request, format string, logs *logsBuilder) (collectResponse, error) {
	var resp collectResponse
	if err := d.meta.fromHTTP(req.Header, req.URL.Query()); err != nil {
		return resp, err
	}
	text, err := readText(req, r.cfg.MaxRequestBodySize)
	if err != nil {
		return resp, err
	}
	res, ids, err := r.decodeText(d, text, format, req.Header, idSeed(req.Context(), ""))
	if err != nil {
		return resp, err
	}
	resp = collectResponse{
		CorrelationID:    res.correlationID,
		ScoringTimestamp: contract.FormatTimestamp(res.timestamp),
		RequestID:        res.requestID,
	}
	if ids != nil && (d.table.corrCol >= 0 || d.meta.correlationIDs != nil) {
		resp.CorrelationIDs = make([]string, len(ids))
		for i, id := range ids {
			resp.CorrelationIDs[i] = id.correlationID
		}
	}
	rate := r.policy.rate(res.modelName, res.designation)
	resp.Accepted = d.appendLogs(logs, &res, ids, rate, r.now())
	resp.Skipped = d.table.rows - resp.Accepted
	return resp, nil
}

// decodeText decodes and checks the text of one collect request, d.meta
// holding what its headers and query said: its rows are then in d.table,
// their attributes in res and ids.
func (r *modeldataReceiver) decodeText(d *decoder, text, format string, header http.Header, seed string) (res resolved, ids []rowIDs, err error) {
	if format == "csv" {
		err = d.decodeCSV(text)
	} else {
		err = d.decodeJSON(text)
	}
	if err != nil {
		return res, nil, err
	}
	if err := d.liftCorrelationColumns(); err != nil {
		return res, nil, err
	}
	if res, err = r.resolveCollect(&d.meta, header, seed); err != nil {
		return res, nil, err
	}
	ids, err = d.perRowIDs(&res)
	return res, ids, err
}

// resolveCollect checks the request's fields and fills in defaults: a new
// correlation id (<user_correlation_id>-<uuid>), now as the scoring time,
// the x-request-id header or a new uuid as the request id; the uuids derive
// from seed when it is not "" (idSeed).
func (r *modeldataReceiver) resolveCollect(m *meta, header http.Header, seed string) (resolved, error) {
	res := resolved{modelName: m.modelName, modelVersion: m.modelVersion, designation: m.designation}
	if res.modelName == "" {
		return res, badRequest("model_name is missing")
	}
	switch res.designation {
	case "":
		res.designation = r.cfg.DefaultDesignation
	case "default": // the reference collector's "default" meant "general"
		res.designation = contract.DesignationGeneral
	}
	checks := []struct{ what, v string }{
		{"model_name", res.modelName}, {"designation", res.designation}, {"model_version", res.modelVersion},
		{"subscription_id", m.subscriptionID}, {"resource_group", m.resourceGroup}, {"workspace", m.workspace}, {"webservice", m.webservice},
	}
	for i, c := range checks {
		if c.v == "" && i >= 2 { // optional fields
			continue
		}
		if err := contract.ValidateSegment(c.what, c.v); err != nil {
			return res, badRequest("%v", err)
		}
	}
	for _, a := range []resourceAttr{
		{contract.AttrSubscriptionID, m.subscriptionID}, {contract.AttrResourceGroup, m.resourceGroup},
		{contract.AttrWorkspace, m.workspace}, {contract.AttrWebservice, m.webservice},
	} {
		if a.value != "" {
			res.resource = append(res.resource, a)
		}
	}
	for _, id := range []struct{ what, v string }{
		{"user_correlation_id", m.userCorrelationID}, {"correlation_id", m.correlationID}, {"request_id", m.requestID},
	} {
		if len(id.v) > maxIDLen {
			return res, badRequest("%s is %d bytes long, over %d", id.what, len(id.v), maxIDLen)
		}
	}
	res.correlationID = m.correlationID
	if res.correlationID == "" {
		res.correlationID = contract.CorrelationIDFor(m.userCorrelationID, seed)
	}
	res.timestamp = r.now().UTC()
	if m.scoringTimestamp != "" {
		ts, err := contract.ParseTimestamp(m.scoringTimestamp)
		if err != nil {
			return res, badRequest("scoring_timestamp: %v", err)
		}
		res.timestamp = ts
	}
	res.requestID = m.requestID
	if res.requestID == "" {
		res.requestID = header.Get("X-Request-Id")
		if len(res.requestID) > maxIDLen {
			return res, badRequest("the x-request-id header is %d bytes long, over %d", len(res.requestID), maxIDLen)
		}
	}
	if res.requestID == "" {
		res.requestID = contract.RequestIDFor(seed)
	}
	return res, nil
}

// readText reads the whole body and checks that it is UTF-8. A body whose
// Content-Length is over limit (max_request_body_size) is refused before a
// byte is read; confighttp's limit on what is read (also after
// decompression) shows up as *http.MaxBytesError.
func readText(req *http.Request, limit int64) (string, error) {
	if limit <= 0 {
		limit = confighttpDefaultMaxBodySize
	}
	if req.ContentLength > limit {
		return "", tooLarge(limitBodySize, "the body is %d bytes, over max_request_body_size (%d bytes)", req.ContentLength, limit)
	}
	bound := limit
	if req.ContentLength >= 0 {
		bound = req.ContentLength
	}
	b, err := readBody(req.Body, bound)
	if err != nil {
		return "", bodyError(err)
	}
	if i := invalidUTF8At(b); i >= 0 {
		return "", badRequest("the body is not valid UTF-8 (byte %d)", i)
	}
	if len(b) == 0 {
		return "", nil
	}
	// The bytes are never written again: the text shares them instead of
	// copying the body (the values decoded from it are substrings of it).
	return unsafe.String(&b[0], len(b)), nil
}

const (
	// firstChunk is the most a body's buffer takes before a byte of it has
	// arrived: a client that announces a large body and sends nothing costs
	// no more than its connection does.
	firstChunk = 16 << 10
	// maxChunk bounds the chunks a body is gathered in.
	maxChunk = 1 << 20
)

// readBody reads r to its end, a body of at most bound bytes (its
// Content-Length, or the most the server reads of it). The memory it takes
// follows the bytes that have arrived, which are what the bytes-in-flight
// budget charges, never the size announced: the body is gathered in chunks
// of growing size, and once half of bound has arrived, the rest is read
// into one buffer of bound bytes (at most twice what has arrived), the
// chunks copied first. The largest body is thus read with at most 1.5x its
// size allocated; a small one, in one buffer of its size.
func readBody(r io.Reader, bound int64) ([]byte, error) {
	if bound < firstChunk {
		return readRest(r, make([]byte, 0, bound+1)) // the byte past bound: its read sees the end
	}
	var chunks [][]byte
	var received int64
	half := (bound + 2) / 2
	size := int64(firstChunk)
	for {
		if received >= half && len(chunks) > 0 {
			buf := make([]byte, 0, bound+1)
			for _, c := range chunks {
				buf = append(buf, c...)
			}
			return readRest(r, buf)
		}
		c := make([]byte, min(size, half-received))
		n, err := fill(r, c)
		received += int64(n)
		chunks = append(chunks, c[:n])
		if err == io.EOF {
			if len(chunks) == 1 {
				return chunks[0], nil
			}
			return slices.Concat(chunks...), nil
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, maxChunk)
	}
}

// fill reads r into c until c is full or a read fails (io.EOF at the end).
// Not io.ReadFull: it reports a short read as io.ErrUnexpectedEOF, which is
// also what net/http's body returns for a connection cut before its
// Content-Length, so a truncated body could not be told from a whole one.
func fill(r io.Reader, c []byte) (int, error) {
	n := 0
	for n < len(c) {
		m, err := r.Read(c[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readRest reads r to its end into buf, growing it only if r has more than
// its capacity.
func readRest(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, firstChunk)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// builder is a logsBuilder that hands one request's rows to the pipeline
// as a pieces.Sequence, with the receiver's telemetry for each piece.
func (r *modeldataReceiver) builder(ctx context.Context, format string) *logsBuilder {
	seq := &pieces.Sequence{RetryFor: r.pieceRetry}
	return &logsBuilder{ld: plog.NewLogs(), emit: func(ld plog.Logs, rows int, more bool) error {
		stampRows(ctx, ld)
		opCtx := r.obsrecv.StartLogsOp(ctx)
		err := seq.Offer(opCtx, r.next, ld, more)
		r.obsrecv.EndLogsOp(opCtx, format, rows, err)
		return err
	}}
}

// consumeStatus maps a pipeline refusal to HTTP by its type, as the OTLP
// receiver (v0.165, internal/errors) does: an error carrying a gRPC status
// maps by its code (ResourceExhausted 429; Unavailable, Canceled,
// DeadlineExceeded, Aborted, OutOfRange, DataLoss 503; InvalidArgument 400;
// ...); any other error is retryable, 503 (the memory_limiter's refusal, a
// full sending queue), unless it is permanent: 500, the server's fault.
func consumeStatus(err error) int {
	s, ok := status.FromError(err)
	if !ok {
		if consumererror.IsPermanent(err) {
			return http.StatusInternalServerError
		}
		return http.StatusServiceUnavailable
	}
	switch s.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unimplemented:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// retryAfter is the delay a retryable refusal asks for: the gRPC status's
// RetryInfo when it carries one (as OTLP/HTTP sends it), else 1 s.
func retryAfter(err error) string {
	if s, ok := status.FromError(err); ok {
		for _, d := range s.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				return strconv.FormatInt(max(1, int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))), 10)
			}
		}
	}
	return defaultRetryAfter
}

func writeConsumeError(w http.ResponseWriter, err error, write func(http.ResponseWriter, int, string)) {
	code := consumeStatus(err)
	msg := "the pipeline refused the rows: " + err.Error()
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		after := retryAfter(err)
		w.Header().Set("Retry-After", after)
		msg += "; retry after " + after + "s"
	}
	write(w, code, msg)
}

func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.status
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeTextError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
