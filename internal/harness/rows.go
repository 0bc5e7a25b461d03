// Package harness is the end-to-end load, fault and verification harness of
// otelcol-modeldata: it generates model data rows whose every cell can be
// recomputed from the row's id, sends them to a running collector through
// the collect API (POST /v1/collect) or OTLP/HTTP logs in contract form
// (POST /v1/logs), and reads every data.csv back (from a local folder or a
// blob container) to count the rows expected, found, missing, duplicated and
// malformed. cmd/modeldata-loadgen, cmd/modeldata-verify and the tests in
// test/e2e/harness_*_test.go share it.
package harness

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// RowIDColumn is the first feature of every generated row: "<run>.<request>.<index>".
const RowIDColumn = "row_id"

// Rows describes the rows of one run. Every cell is a function of the run
// id, the request number and the row's index in it, so the verifier needs
// nothing but this description and the list of acknowledged requests.
type Rows struct {
	Run         string `json:"run"`
	Model       string `json:"model"`
	Version     string `json:"version"`
	Designation string `json:"designation"`
	Features    int    `json:"features"` // columns per row, row_id included (>= 1)
	// Shape of the OTLP door's records: ShapeContract or ShapeSDK.
	Shape          string `json:"shape,omitempty"`
	RowsPerRequest int    `json:"rows_per_request"`
}

// Defaults fills unset fields.
func (r *Rows) Defaults() {
	if r.Model == "" {
		r.Model = "load_model"
	}
	if r.Version == "" {
		r.Version = "1"
	}
	if r.Designation == "" {
		r.Designation = contract.DesignationInputs
	}
	if r.Features < 1 {
		r.Features = 10
	}
	if r.RowsPerRequest < 1 {
		r.RowsPerRequest = 100
	}
}

// FeatureNames are the feature columns in order: row_id, f1, f2, ...
func (r *Rows) FeatureNames() []string {
	names := make([]string, r.Features)
	names[0] = RowIDColumn
	for k := 1; k < r.Features; k++ {
		names[k] = "f" + strconv.Itoa(k)
	}
	return names
}

// Header is the header line every data.csv of the run must have.
func (r *Rows) Header() []string {
	return append(r.layout().names, contract.CorrelationColumns...)
}

// RequestID is the $aml_request_id of request req.
func (r *Rows) RequestID(req int) string { return r.Run + "-q" + strconv.Itoa(req) }

// RowID is the row_id cell of row i of request req.
func (r *Rows) RowID(req, i int) string {
	return r.Run + "." + strconv.Itoa(req) + "." + strconv.Itoa(i)
}

// ParseRowID splits a row id of this run; ok is false for another run's.
func (r *Rows) ParseRowID(id string) (req, i int, ok bool) {
	rest, found := strings.CutPrefix(id, r.Run+".")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	req, err1 = strconv.Atoi(a)
	i, err2 = strconv.Atoi(b)
	if err1 != nil || err2 != nil || req < 0 || i < 0 || i >= r.RowsPerRequest {
		return 0, 0, false
	}
	return req, i, true
}

// seq is the global row number, the seed of the row's cells.
func (r *Rows) seq(req, i int) int64 { return int64(req)*int64(r.RowsPerRequest) + int64(i) }

// Value is feature k (k >= 1) of row i of request req: an int, a double
// with a fraction, or a string that sometimes needs CSV quoting.
func (r *Rows) Value(req, i, k int) any {
	s := r.seq(req, i)
	switch k % 3 {
	case 1:
		return s * int64(k)
	case 2:
		return float64(s) + float64(k%256+1)/512
	default:
		if s%10 == 0 {
			return fmt.Sprintf("q,\"%d\"", k)
		}
		return "v" + strconv.Itoa(k) + "_" + strconv.FormatInt(s%97, 10)
	}
}

// Cell is the CSV cell of feature k as the exporter writes it.
func (r *Rows) Cell(req, i, k int) string {
	return formatCell(r.Value(req, i, k))
}

// appendJSONValue appends feature k as a JSON value.
func (r *Rows) appendJSONValue(b []byte, req, i, k int) []byte {
	switch v := r.Value(req, i, k).(type) {
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	default:
		return strconv.AppendQuote(b, v.(string))
	}
}
