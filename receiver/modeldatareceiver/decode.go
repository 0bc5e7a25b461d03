package modeldatareceiver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// requestError is a client mistake: it becomes an HTTP status and message,
// never an error-level log line.
type requestError struct {
	status int
	msg    string
	limit  string // the limit the request is over (limitRows, ...), or ""
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// tooLarge refuses a request over one of the limits that a smaller request
// would meet (413).
func tooLarge(limit, format string, args ...any) error {
	return &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf(format, args...), limit: limit}
}

// maxIDLen bounds the ids a client may give (they become CSV cells).
const maxIDLen = 512

// meta is what a request says about its rows, before defaults are applied.
type meta struct {
	modelName, modelVersion, designation string
	userCorrelationID, correlationID     string
	scoringTimestamp, requestID          string
	subscriptionID, resourceGroup        string
	workspace, webservice                string

	featureNames    []string
	hasFeatureNames bool
	// Per-row values given beside the data (nil when absent).
	correlationIDs    []string
	scoringTimestamps []string
}

// metaFields are the request fields given as JSON strings, query
// parameters or X-Modeldata-* headers.
var metaFields = []string{
	"model_name", "model_version", "designation", "user_correlation_id", "correlation_id",
	"scoring_timestamp", "request_id", "subscription_id", "resource_group", "workspace", "webservice",
}

func (m *meta) field(name string) *string {
	switch name {
	case "model_name":
		return &m.modelName
	case "model_version":
		return &m.modelVersion
	case "designation":
		return &m.designation
	case "user_correlation_id":
		return &m.userCorrelationID
	case "correlation_id":
		return &m.correlationID
	case "scoring_timestamp":
		return &m.scoringTimestamp
	case "request_id":
		return &m.requestID
	case "subscription_id":
		return &m.subscriptionID
	case "resource_group":
		return &m.resourceGroup
	case "workspace":
		return &m.workspace
	case "webservice":
		return &m.webservice
	}
	return nil
}

// headerName is the X-Modeldata-* header carrying a request field.
func headerName(field string) string {
	parts := strings.Split(field, "_")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return "X-Modeldata-" + strings.Join(parts, "-")
}

var metaHeaders = func() map[string]string {
	h := make(map[string]string, len(metaFields))
	for _, f := range metaFields {
		h[f] = headerName(f)
	}
	return h
}()

// fromHTTP fills fields from X-Modeldata-* headers, then query parameters
// (which win). An unknown query parameter is refused, so a typo is not
// silently ignored.
func (m *meta) fromHTTP(header http.Header, query map[string][]string) error {
	for _, f := range metaFields {
		if v := header.Get(metaHeaders[f]); v != "" {
			*m.field(f) = v
		}
	}
	for k, vs := range query {
		p := m.field(k)
		if p == nil {
			return badRequest("unknown query parameter %q (known: %s)", k, strings.Join(metaFields, ", "))
		}
		if len(vs) != 1 {
			return badRequest("query parameter %q is given %d times", k, len(vs))
		}
		*p = vs[0]
	}
	return nil
}

// table is the decoded rows: cells[r*width+c] indexes nodes, -1 when the
// row has no value for the column.
type table struct {
	columns []string
	width   int
	rows    int
	cells   []int32
	nodes   []node
	// Where the rows' own correlation columns are (-1: absent), and which
	// columns are features.
	corrCol, tsCol, reqCol int
	features               []int
}

type limits struct {
	maxRows, maxColumns, maxValues int
}

// decoder holds the reusable storage of one request.
type decoder struct {
	limits limits
	meta   meta
	table  table
	index  map[string]int
	// names is the storage of meta.featureNames, reused by the next request.
	names []string
}

func newDecoder(l limits) *decoder {
	return &decoder{limits: l, index: map[string]int{}}
}

func (d *decoder) reset() {
	d.meta = meta{}
	t := &d.table
	*t = table{columns: t.columns[:0], cells: t.cells[:0], nodes: t.nodes[:0], features: t.features[:0]}
	clear(d.index)
}

// parseJSON parses a JSON body into the table's nodes.
func (d *decoder) parseJSON(body string) error {
	nodes, err := parseJSON(body, d.table.nodes, d.limits.maxValues)
	d.table.nodes = nodes
	if err == nil {
		return nil
	}
	var re *requestError
	if !errors.As(err, &re) {
		return badRequest("%v", err)
	}
	return err
}

// decodeJSON decodes a collect request body: an object with the request
// fields and data.
func (d *decoder) decodeJSON(body string) error {
	if err := d.parseJSON(body); err != nil {
		return err
	}
	nodes := d.table.nodes
	var err error
	if nodes[0].kind != kindObject {
		return badRequest("the body must be a JSON object with model_name, data, ...; got a JSON %s", nodes[0].kind)
	}
	data := -1
	for i := int32(1); i < nodes[0].end; i = nodes[i].end {
		n := &nodes[i]
		switch n.key {
		case "data":
			data = int(i)
		case "feature_names":
			names, err := appendStrings(d.names[:0], nodes, i, "feature_names")
			if err != nil {
				return err
			}
			d.names = names[:0]
			d.meta.featureNames, d.meta.hasFeatureNames = names, names != nil
		case "correlation_ids":
			if d.meta.correlationIDs, err = stringArray(nodes, i, "correlation_ids"); err != nil {
				return err
			}
		case "scoring_timestamps":
			if d.meta.scoringTimestamps, err = stringArray(nodes, i, "scoring_timestamps"); err != nil {
				return err
			}
		default:
			p := d.meta.field(n.key)
			if p == nil {
				return badRequest("unknown field %q (known: %s, feature_names, data, correlation_ids, scoring_timestamps)", n.key, strings.Join(metaFields, ", "))
			}
			switch {
			case n.kind == kindString:
				*p = n.s
			case n.kind == kindInt && n.key == "model_version":
				*p = strconv.FormatInt(n.integer(), 10)
			case n.kind == kindBigInt && n.key == "model_version":
				*p = n.s
			case n.kind != kindNull:
				return badRequest("%s must be a string, got a JSON %s", n.key, n.kind)
			}
		}
	}
	if data < 0 {
		return badRequest("data is missing: give the rows as a list of rows, one row, or a list of objects keyed by feature name")
	}
	return d.rowsFromJSON(data)
}

// stringArray reads an array of strings (null: absent).
func stringArray(nodes []node, i int32, what string) ([]string, error) {
	return appendStrings(nil, nodes, i, what)
}

// appendStrings is stringArray appending to dst[:0]; nil when absent.
func appendStrings(dst []string, nodes []node, i int32, what string) ([]string, error) {
	n := nodes[i]
	if n.kind == kindNull {
		return nil, nil
	}
	if n.kind != kindArray {
		return nil, badRequest("%s must be a list of strings, got a JSON %s", what, n.kind)
	}
	out := dst[:0]
	if out == nil {
		out = make([]string, 0, n.end-i-1)
	}
	for j := i + 1; j < n.end; j = nodes[j].end {
		switch nodes[j].kind {
		case kindString:
			out = append(out, nodes[j].s)
		case kindNull:
			out = append(out, "")
		default:
			return nil, badRequest("%s[%d] must be a string, got a JSON %s", what, len(out), nodes[j].kind)
		}
	}
	return out, nil
}

// rowsFromJSON reads data: a list of rows (lists), one row (a list of
// values), one object or a list of objects keyed by feature name.
func (d *decoder) rowsFromJSON(data int) error {
	nodes := d.table.nodes
	root := nodes[data]
	switch root.kind {
	case kindObject:
		return d.keyedRows([]int32{int32(data)})
	case kindArray:
	default:
		return badRequest("data must be a list of rows, one row, or a list of objects keyed by feature name; got a JSON %s", root.kind)
	}
	var elems []int32
	var lists, objects, values int
	for j := int32(data + 1); j < root.end; j = nodes[j].end {
		elems = append(elems, j)
		switch nodes[j].kind {
		case kindArray:
			lists++
		case kindObject:
			objects++
		default:
			values++
		}
	}
	switch {
	case len(elems) == 0:
		return d.setColumns(d.meta.featureNames)
	case lists == len(elems):
		return d.positionalRows(elems)
	case objects == len(elems):
		return d.keyedRows(elems)
	case values == len(elems):
		return d.positionalRows([]int32{int32(data)})
	}
	return badRequest("data mixes %d lists, %d objects and %d values: give a list of rows, one row, or a list of objects keyed by feature name", lists, objects, values)
}

func (d *decoder) checkRows(n int) error {
	if n > d.limits.maxRows {
		return tooLarge(limitRows, "%d rows is over max_rows_per_request (%d): split the request", n, d.limits.maxRows)
	}
	return nil
}

// positionalRows reads rows given as lists; each row must be as wide as
// feature_names (or as the first row, when no names are given).
func (d *decoder) positionalRows(rows []int32) error {
	if err := d.checkRows(len(rows)); err != nil {
		return err
	}
	nodes := d.table.nodes
	width := -1
	if d.meta.hasFeatureNames {
		width = len(d.meta.featureNames)
	}
	for r, i := range rows {
		n := 0
		for j := i + 1; j < nodes[i].end; j = nodes[j].end {
			n++
		}
		switch {
		case width < 0:
			width = n
		case n != width && d.meta.hasFeatureNames:
			return badRequest("row %d has %d values but feature_names has %d", r, n, width)
		case n != width:
			return badRequest("row %d has %d values but row 0 has %d", r, n, width)
		}
	}
	names := d.meta.featureNames
	if !d.meta.hasFeatureNames {
		if width > d.limits.maxColumns {
			return tooLarge(limitColumns, "rows of %d values are over max_columns (%d)", width, d.limits.maxColumns)
		}
		// Unnamed columns are named by position, as pandas names a
		// DataFrame built from lists.
		names = make([]string, width)
		for c := range names {
			names[c] = strconv.Itoa(c)
		}
	}
	if err := d.setColumns(names); err != nil {
		return err
	}
	t := &d.table
	t.rows = len(rows)
	t.cells = growCells(t.cells, t.rows*t.width)
	k := 0
	for _, i := range rows {
		for j := i + 1; j < nodes[i].end; j = nodes[j].end {
			t.cells[k] = j
			k++
		}
	}
	return nil
}

// keyedRows reads rows given as objects. The columns are feature_names
// first (when given), then the other keys in order of first appearance.
func (d *decoder) keyedRows(rows []int32) error {
	if err := d.checkRows(len(rows)); err != nil {
		return err
	}
	if err := d.setColumns(d.meta.featureNames); err != nil {
		return err
	}
	nodes := d.table.nodes
	t := &d.table
	for _, i := range rows {
		for j := i + 1; j < nodes[i].end; j = nodes[j].end {
			if _, ok := d.index[nodes[j].key]; !ok {
				if err := d.addColumn(nodes[j].key); err != nil {
					return err
				}
			}
		}
	}
	// Every row gets a value (maybe empty) in every column: rows that each
	// name other keys cost rows × columns, whatever the body's size.
	if cells := len(rows) * t.width; cells > d.limits.maxValues {
		return tooLarge(limitValues, "%d rows × %d distinct keys is %d values, over max_values_per_request (%d): split the request", len(rows), t.width, cells, d.limits.maxValues)
	}
	t.rows = len(rows)
	t.cells = growCells(t.cells, t.rows*t.width)
	for k := range t.cells {
		t.cells[k] = -1
	}
	for r, i := range rows {
		for j := i + 1; j < nodes[i].end; j = nodes[j].end {
			t.cells[r*t.width+d.index[nodes[j].key]] = j
		}
	}
	return nil
}

func growCells(cells []int32, n int) []int32 {
	if cap(cells) < n {
		return make([]int32, n)
	}
	return cells[:n]
}

func (d *decoder) setColumns(names []string) error {
	for _, name := range names {
		if err := d.addColumn(name); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) addColumn(name string) error {
	t := &d.table
	if name == "" {
		return badRequest("column %d has an empty feature name", len(t.columns))
	}
	if _, dup := d.index[name]; dup {
		return badRequest("feature name %q appears twice", name)
	}
	if len(t.columns) >= d.limits.maxColumns {
		return tooLarge(limitColumns, "more than max_columns (%d) columns", d.limits.maxColumns)
	}
	d.index[name] = len(t.columns)
	t.columns = append(t.columns, name)
	t.width = len(t.columns)
	return nil
}

// decodeCSV reads a text/csv body: a header row of feature names, then one
// line per row. Cells stay strings, exactly as written.
func (d *decoder) decodeCSV(body string) error {
	body = strings.TrimPrefix(body, "\ufeff") // a byte order mark from Excel
	r := newCSVReader(body)
	header, _, ok, err := r.next(nil)
	if err != nil {
		return badRequest("CSV header: %v", err)
	}
	if !ok {
		return badRequest("the CSV body is empty: the first line must name the features")
	}
	if len(header) > d.limits.maxColumns {
		return tooLarge(limitColumns, "the CSV header has %d columns, over max_columns (%d)", len(header), d.limits.maxColumns)
	}
	if d.meta.hasFeatureNames {
		return badRequest("feature_names cannot be given with a CSV body: its header row names the features")
	}
	if err := d.setColumns(header); err != nil {
		return err
	}
	t := &d.table
	rec := make([]string, 0, t.width)
	for {
		var line int
		rec, line, ok, err = r.next(rec)
		if err != nil {
			return badRequest("CSV: %v", err)
		}
		if !ok {
			break
		}
		if len(rec) != t.width {
			return badRequest("CSV line %d has %d values but the header names %d features", line, len(rec), t.width)
		}
		if err := d.checkRows(t.rows + 1); err != nil {
			return err
		}
		if len(t.nodes)+len(rec) > d.limits.maxValues {
			return tooManyValues(len(t.nodes)+len(rec), d.limits.maxValues)
		}
		for _, v := range rec {
			t.cells = append(t.cells, int32(len(t.nodes)))
			t.nodes = append(t.nodes, node{kind: kindString, s: v, end: int32(len(t.nodes) + 1)})
		}
		t.rows++
	}
	if t.rows == 0 {
		return badRequest("the CSV body has a header row but no rows (lines end at \\n, \\r\\n or \\r)")
	}
	return nil
}

// liftCorrelationColumns finds the correlation columns a row may carry
// ($aml_dc_correlation_id, $aml_dc_scoring_timestamp, $aml_request_id):
// they become the row's ids instead of features. The other five are
// written by the exporter from the path parts, so they are dropped.
func (d *decoder) liftCorrelationColumns() error {
	t := &d.table
	t.corrCol, t.tsCol, t.reqCol = -1, -1, -1
	t.features = t.features[:0]
	for c, name := range t.columns {
		switch name {
		case contract.ColCorrelationID:
			t.corrCol = c
		case contract.ColScoringTimestamp:
			t.tsCol = c
		case contract.ColRequestID:
			t.reqCol = c
		case contract.ColBoundary, contract.ColWorkspace, contract.ColServiceName, contract.ColModelName, contract.ColModelVersion:
		default:
			t.features = append(t.features, c)
		}
	}
	for _, c := range []int{t.corrCol, t.tsCol, t.reqCol} {
		if c < 0 {
			continue
		}
		for r := 0; r < t.rows; r++ {
			if i := t.cells[r*t.width+c]; i >= 0 && t.nodes[i].kind != kindString && t.nodes[i].kind != kindNull {
				return badRequest("row %d: %s must be a string, got a JSON %s", r, t.columns[c], t.nodes[i].kind)
			}
		}
	}
	return nil
}

// rowString is a row's string cell in column c, "" when absent.
func (t *table) rowString(r, c int) string {
	if c < 0 {
		return ""
	}
	if i := t.cells[r*t.width+c]; i >= 0 {
		return t.nodes[i].s
	}
	return ""
}

func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}
