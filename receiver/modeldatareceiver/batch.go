package modeldatareceiver

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// batchPath takes many collect requests in one body, one JSON collect
// request per line (NDJSON): what a client that batches in the background
// (clients/python) sends, so thousands of small collect() calls cost one
// HTTP request.
const batchPath = collectPath + "/batch"

const ndjsonContentType = "application/x-ndjson"

// batchResponse is the answer to a batch: rows accepted over all groups, and
// the groups refused, by their 0-based line among the non-empty lines. The
// caller gave the correlation values itself, so they are not echoed.
type batchResponse struct {
	Groups   int          `json:"groups"`
	Accepted int          `json:"accepted"`
	Skipped  int          `json:"skipped,omitempty"`
	Rejected []groupError `json:"rejected,omitempty"`
}

type groupError struct {
	Group  int    `json:"group"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

// handleCollectBatch decodes every line exactly as a POST to /v1/collect with
// the same headers and query (so X-Modeldata-* headers and query parameters
// are defaults for every group) and hands all accepted rows to the pipeline
// at once. A refused group loses nothing else: the others are accepted and
// the answer is 200 with the refusals listed. Only when every group is
// refused is the answer that group's 4xx. A pipeline refusal (429/503) is
// for the whole batch, which the client retries.
func (r *modeldataReceiver) handleCollectBatch(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed: POST collect requests, one JSON object per line")
		return
	}
	text, err := r.readBatch(req)
	if err != nil {
		r.refuse(w, req, err, writeJSONError)
		return
	}
	d := r.getDecoder()
	ld, resp, err := r.decodeBatch(d, text, req)
	r.putDecoder(d)
	if err != nil {
		r.refuse(w, req, err, writeJSONError)
		return
	}
	if resp.Groups == 0 {
		writeJSONError(w, http.StatusBadRequest, "the body has no collect requests: send one JSON collect request per line")
		return
	}
	if len(resp.Rejected) > 0 {
		r.settings.Logger.Debug("collect batch: groups refused", zap.Int("refused", len(resp.Rejected)), zap.Int("groups", resp.Groups))
	}
	if resp.Accepted > 0 {
		if err := r.consume(req.Context(), ld, "json", resp.Accepted); err != nil {
			writeConsumeError(w, err, writeJSONError)
			return
		}
	}
	code := http.StatusOK
	if len(resp.Rejected) == resp.Groups {
		code = resp.Rejected[0].Status
	}
	writeJSON(w, code, resp)
}

// readBatch reads a batch's body. A batch is bounded as one request is:
// all its values together by max_values_per_request, counted here before
// any is decoded.
func (r *modeldataReceiver) readBatch(req *http.Request) (string, error) {
	if err := batchContentType(req.Header.Get("Content-Type")); err != nil {
		return "", err
	}
	text, err := readText(req, r.cfg.MaxRequestBodySize)
	if err != nil {
		return "", err
	}
	if n := jsonValueCount(text); n > r.limits.maxValues {
		return "", tooManyValues(n, r.limits.maxValues)
	}
	return text, nil
}

// decodeBatch decodes each non-empty line of text as one collect request.
// A group's own error is listed in the answer; the error returned refuses
// the whole batch: more groups than max_rows_per_request, or more values
// than max_values_per_request over all groups.
func (r *modeldataReceiver) decodeBatch(d *decoder, text string, req *http.Request) (plog.Logs, batchResponse, error) {
	// Every line reads the same headers and query: read them once.
	var shared meta
	sharedErr := shared.fromHTTP(req.Header, req.URL.Query())
	logs := logsBuilder{ld: plog.NewLogs()}
	var resp batchResponse
	values := 0
	for rest := text; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if strings.TrimSpace(line) == "" {
			continue
		}
		group := resp.Groups
		resp.Groups++
		if resp.Groups > r.limits.maxRows {
			return plog.Logs{}, resp, tooLarge(limitRows, "more than max_rows_per_request (%d) collect requests in one batch: split it", r.limits.maxRows)
		}
		d.reset()
		var res resolved
		var ids []rowIDs
		err := sharedErr
		if err == nil {
			d.meta = shared
			res, ids, err = r.decodeText(d, line, "json", req.Header)
		}
		if values += len(d.table.nodes); values > r.limits.maxValues {
			return plog.Logs{}, resp, tooManyValues(values, r.limits.maxValues)
		}
		if err != nil {
			resp.Rejected = append(resp.Rejected, groupError{Group: group, Status: statusOf(err), Error: err.Error()})
			continue
		}
		kept := d.appendLogs(&logs, &res, ids, r.policy.rate(res.modelName, res.designation), r.now())
		resp.Accepted += kept
		resp.Skipped += d.table.rows - kept
	}
	return logs.ld, resp, nil
}

func batchContentType(contentType string) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != ndjsonContentType {
		return &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q: send %s, one JSON collect request per line", contentType, ndjsonContentType)}
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("charset %q: only utf-8 is accepted", cs)}
	}
	return nil
}
