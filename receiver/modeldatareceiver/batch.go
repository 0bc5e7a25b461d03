package modeldatareceiver

import (
	"fmt"
	"iter"
	"mime"
	"net/http"
	"strconv"
	"strings"

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
	logs := r.builder(req.Context(), "json")
	resp := r.decodeBatch(d, text, req, logs)
	r.putDecoder(d)
	if resp.Groups == 0 {
		writeJSONError(w, http.StatusBadRequest, "the body has no collect requests: send one JSON collect request per line")
		return
	}
	if len(resp.Rejected) > 0 {
		r.settings.Logger.Debug("collect batch: groups refused", zap.Int("refused", len(resp.Rejected)), zap.Int("groups", resp.Groups))
	}
	if err := logs.finish(); err != nil {
		writeConsumeError(w, err, writeJSONError)
		return
	}
	code := http.StatusOK
	if len(resp.Rejected) == resp.Groups {
		code = resp.Rejected[0].Status
	}
	writeJSON(w, code, resp)
}

// readBatch reads a batch's body. A batch is bounded as one request is, by
// max_rows_per_request groups and max_values_per_request values over all
// groups, counted here before any is decoded: once its rows go on, the
// batch is not refused whole.
func (r *modeldataReceiver) readBatch(req *http.Request) (string, error) {
	if err := batchContentType(req.Header.Get("Content-Type")); err != nil {
		return "", err
	}
	text, err := readText(req, r.cfg.MaxRequestBodySize)
	if err != nil {
		return "", err
	}
	groups, values := 0, 0
	for line := range batchLines(text) {
		if groups++; groups > r.limits.maxRows {
			return "", tooLarge(limitRows, "more than max_rows_per_request (%d) collect requests in one batch: split it", r.limits.maxRows)
		}
		if values += jsonValueCount(line); values > r.limits.maxValues {
			return "", tooManyValues(values, r.limits.maxValues)
		}
	}
	return text, nil
}

// batchLines yields the non-empty lines of a batch.
func batchLines(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := text; rest != ""; {
			var line string
			line, rest, _ = strings.Cut(rest, "\n")
			if strings.TrimSpace(line) != "" && !yield(line) {
				return
			}
		}
	}
}

// decodeBatch decodes each non-empty line of text as one collect request
// into logs. A group's own error is listed in the answer.
func (r *modeldataReceiver) decodeBatch(d *decoder, text string, req *http.Request, logs *logsBuilder) batchResponse {
	// Every line reads the same headers and query: read them once.
	var shared meta
	sharedErr := shared.fromHTTP(req.Header, req.URL.Query())
	var resp batchResponse
	for line := range batchLines(text) {
		group := resp.Groups
		resp.Groups++
		d.reset()
		var res resolved
		var ids []rowIDs
		err := sharedErr
		if err == nil {
			d.meta = shared
			res, ids, err = r.decodeText(d, line, "json", req.Header, idSeed(req.Context(), strconv.Itoa(group)))
		}
		if err != nil {
			resp.Rejected = append(resp.Rejected, groupError{Group: group, Status: statusOf(err), Error: err.Error()})
			continue
		}
		kept := d.appendLogs(logs, &res, ids, r.policy.rate(res.modelName, res.designation), r.now())
		resp.Accepted += kept
		resp.Skipped += d.table.rows - kept
	}
	return resp
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
