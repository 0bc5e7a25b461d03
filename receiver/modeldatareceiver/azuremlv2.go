package modeldatareceiver

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// The azureml-ai-monitoring SDK (azureml.ai.monitoring.Collector) posts each
// collected DataFrame to a local sidecar:
//
//	POST /modeldata/log
//	Content-Type: application/json (application/octet-stream in compact mode)
//	trace-id: <payload uuid>
//	ce-time: <epoch seconds>
//	ce-type: azureml.inference.<collection name>
//	ce-collect-data-type: pandas.core.frame.DataFrame
//	ce-agent: azureml-ai-monitoring/<version>
//	ce-x-request-id: <correlation id>
//	ce-model-version: <version>
//	ce-<key>: <value> for each header of the correlation context
//
// with the body DataFrame.to_json(orient="records").
const (
	v2Path          = "/modeldata/log"
	v2EventPrefix   = "azureml.inference."
	v2Format        = "azureml_v2"
	headerCEType    = "ce-type"
	headerCETime    = "ce-time"
	headerRequestID = "ce-x-request-id"
	headerVersion   = "ce-model-version"
)

type v2Handler struct {
	r   *modeldataReceiver
	cfg *AzureMLV2Config
}

type v2Response struct {
	Accepted int `json:"accepted"`
	Skipped  int `json:"skipped,omitempty"`
}

func (h *v2Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeTextError(w, http.StatusMethodNotAllowed, req.Method+" is not allowed: the azureml-ai-monitoring SDK POSTs to "+v2Path)
		return
	}
	d := h.r.getDecoder()
	logs := h.r.builder(req.Context(), v2Format)
	resp, err := h.decode(d, req, logs)
	h.r.putDecoder(d)
	if err != nil {
		h.r.settings.Logger.Debug("azureml v2 request refused", zap.Error(err))
		h.r.refuse(w, req, err, writeTextError)
		return
	}
	if err := logs.finish(); err != nil {
		writeConsumeError(w, err, writeTextError)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *v2Handler) decode(d *decoder, req *http.Request, logs *logsBuilder) (v2Response, error) {
	var resp v2Response
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
	case "application/octet-stream":
		return resp, &requestError{status: http.StatusUnsupportedMediaType, msg: "compact mode (application/octet-stream, DataFrame.to_string()) is not machine-readable: " +
			"turn it off (unset AZUREML_MDC_FORMAT_COMPACT or set it to false) so the SDK sends JSON"}
	default:
		return resp, &requestError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q: the azureml-ai-monitoring SDK sends application/json", req.Header.Get("Content-Type"))}
	}
	res, rate, err := h.resolve(req.Header, idSeed(req.Context(), ""))
	if err != nil {
		return resp, err
	}
	text, err := readText(req, h.cfg.MaxRequestBodySize)
	if err != nil {
		return resp, err
	}
	if err := d.decodeRecords(text); err != nil {
		return resp, err
	}
	if err := d.liftCorrelationColumns(); err != nil {
		return resp, err
	}
	ids, err := d.perRowIDs(&res)
	if err != nil {
		return resp, err
	}
	resp.Accepted = d.appendLogs(logs, &res, ids, rate, h.r.now())
	resp.Skipped = d.table.rows - resp.Accepted
	return resp, nil
}

// resolve reads the request's headers into row attributes, and the rate at
// which its collection and model are kept.
func (h *v2Handler) resolve(header http.Header, seed string) (resolved, float64, error) {
	var res resolved
	ceType := header.Get(headerCEType)
	collection, ok := strings.CutPrefix(ceType, v2EventPrefix)
	if !ok || collection == "" {
		return res, 0, badRequest("header %s is %q, expected %s<collection name> as the azureml-ai-monitoring SDK sends", headerCEType, ceType, v2EventPrefix)
	}
	cc := h.cfg.Collections[collection]
	res.designation = cc.Designation
	if res.designation == "" {
		res.designation = defaultCollectionDesignations[collection]
	}
	if res.designation == "" {
		res.designation = collection
	}
	if err := contract.ValidateSegment("designation (from the collection name in "+headerCEType+")", res.designation); err != nil {
		return res, 0, badRequest("%v", err)
	}

	res.modelName = h.cfg.ModelName
	if h.cfg.ModelNameHeader != "" {
		if v := header.Get(h.cfg.ModelNameHeader); v != "" {
			res.modelName = v
		}
	}
	if res.modelName == "" {
		return res, 0, badRequest("no model name: the request has no %s header and azureml_v2::model_name is not set in the collector config", h.cfg.ModelNameHeader)
	}
	if err := contract.ValidateSegment("model name", res.modelName); err != nil {
		return res, 0, badRequest("%v", err)
	}
	res.modelVersion = header.Get(headerVersion)
	if res.modelVersion == "" {
		res.modelVersion = h.cfg.ModelVersion
	}
	if res.modelVersion != "" {
		if err := contract.ValidateSegment("model version ("+headerVersion+")", res.modelVersion); err != nil {
			return res, 0, badRequest("%v", err)
		}
	}
	if h.cfg.Webservice != "" {
		res.resource = []resourceAttr{{contract.AttrWebservice, h.cfg.Webservice}}
	}

	// The SDK's correlation id joins the inputs and outputs of one call:
	// it is both the request id and the correlation id of the rows.
	res.requestID = header.Get(headerRequestID)
	if len(res.requestID) > maxIDLen {
		return res, 0, badRequest("header %s is %d bytes long, over %d", headerRequestID, len(res.requestID), maxIDLen)
	}
	if res.requestID == "" {
		res.requestID = contract.RequestIDFor(seed)
	}
	res.correlationID = res.requestID

	res.timestamp = h.r.now().UTC()
	if v := header.Get(headerCETime); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(secs) {
			return res, 0, badRequest("header %s is %q, expected epoch seconds", headerCETime, v)
		}
		if res.timestamp, err = contract.TimeFromEpochSeconds(secs); err != nil {
			return res, 0, badRequest("header %s %q (epoch seconds) %v", headerCETime, v, err)
		}
	}

	rate := 1.0
	if cc.Enabled != nil && !*cc.Enabled {
		rate = 0
	} else if cc.SamplingRate != nil {
		rate = *cc.SamplingRate
	}
	// Both rates sample on the same hash of the request id, so the
	// combined rate is the smaller one.
	rate = math.Min(rate, h.r.policy.rate(res.modelName, res.designation))
	return res, rate, nil
}

// decodeRecords reads DataFrame.to_json(orient="records"): a list of
// objects keyed by column name, in the DataFrame's column order.
func (d *decoder) decodeRecords(body string) error {
	if err := d.parseJSON(body); err != nil {
		return err
	}
	nodes := d.table.nodes
	root := nodes[0]
	if root.kind != kindArray {
		return badRequest("the body must be a JSON list of records (DataFrame.to_json(orient=\"records\")), got a JSON %s", root.kind)
	}
	var rows []int32
	for j := int32(1); j < root.end; j = nodes[j].end {
		if nodes[j].kind != kindObject {
			return badRequest("record %d must be a JSON object keyed by column name, got a JSON %s", len(rows), nodes[j].kind)
		}
		rows = append(rows, j)
	}
	if len(rows) == 0 {
		return nil
	}
	return d.keyedRows(rows)
}
