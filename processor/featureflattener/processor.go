package featureflattener

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

const (
	// maxDepth bounds recursion into nested maps and arrays; deeper values
	// become one JSON cell.
	maxDepth = 32
	// scalarBodyColumn names the column of a body that is a lone scalar.
	scalarBodyColumn = "body"
	// maxNameCache bounds the cache of media-name verdicts.
	maxNameCache = 4096
	// maxIntern bounds each pooled state's table of interned column names
	// (checked between records: names stay interned for a whole record).
	maxIntern = 8192
	// maxChildren bounds the keys a name remembers (nameInfo.children).
	maxChildren = 64
	// maxOrders and maxOrderFields bound each pooled state's cache of
	// column orders: layouts, and fields over all layouts.
	maxOrders      = 1024
	maxOrderFields = 1 << 16
)

// hashSeed seeds the hashes of column names (nameInfo.hash, orderKey).
var hashSeed = maphash.MakeSeed()

// What prepare found a record to be.
const (
	kindOther    = iota // not model data: untouched
	kindRecord          // model data, one row
	kindContract        // model data that came in contract form, one row
	kindExplode         // model data carrying a batch: one record per row
)

type flattener struct {
	cfg          *Config
	mediaNames   *regexp.Regexp
	ctKeys       []string
	ctKeyLenMask uint64 // bit n set when some content type key is n bytes long
	nameCache    sync.Map
	nameCacheLen atomic.Int64
	pool         sync.Pool

	dropped    metric.Int64Counter
	reasonOpts map[string]metric.AddOption

	logger *zap.Logger
	// The warnings about records over max_columns and about timestamps
	// that are not scoring times.
	capWarn, timeWarn spacedWarning
}

// warnInterval spaces the warnings of one kind.
const warnInterval = time.Minute

// spacedWarning counts the records a warning is about and lets it be logged
// at most once per warnInterval.
type spacedWarning struct {
	records atomic.Int64 // since the last warning
	next    atomic.Int64 // when the next may be logged (unix nanoseconds)
}

// add counts records; when a warning is due, it returns how many records to
// report, since the last one.
func (w *spacedWarning) add(records int64) (int64, bool) {
	w.records.Add(records)
	now, next := time.Now().UnixNano(), w.next.Load()
	if now < next || !w.next.CompareAndSwap(next, now+int64(warnInterval)) {
		return 0, false
	}
	return w.records.Swap(0), true
}

// newFlattener builds the flattener; dropped counts removed values by reason.
func newFlattener(cfg *Config, dropped metric.Int64Counter) (*flattener, error) {
	f := &flattener{cfg: cfg, ctKeys: cfg.Media.ContentTypeKeys, dropped: dropped, reasonOpts: map[string]metric.AddOption{}, logger: zap.NewNop()}
	if len(cfg.Media.NamePatterns) > 0 {
		re, err := regexp.Compile("(?i)(?:" + strings.Join(cfg.Media.NamePatterns, ")|(?:") + ")")
		if err != nil {
			return nil, err
		}
		f.mediaNames = re
	}
	for _, k := range f.ctKeys {
		if len(k) < 64 {
			f.ctKeyLenMask |= 1 << len(k)
		}
	}
	for _, r := range allReasons {
		f.reasonOpts[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	f.pool.New = func() any {
		return &state{intern: map[string]*nameInfo{}, root: &nameInfo{}, orders: map[orderKey]*orderEntry{},
			body: pcommon.NewMap(), spare: pcommon.NewMap()}
	}
	return f, nil
}

// field is one flattened column of a record.
type field struct {
	name   string
	info   *nameInfo     // the interned name
	val    pcommon.Value // the source value, when hasVal
	str    string        // replacement string value (JSON cell, normalized timestamp), when hasStr
	hasVal bool
	hasStr bool
	reason string // non-empty: the value is dropped for this reason
}

// nameInfo is an interned column name: what the state knows about it.
type nameInfo struct {
	name  string
	hash  uint64 // maphash of name
	gen   uint64 // the record idx is for (state.gen)
	idx   int    // index of the record's first field of this name; -1: declared, absent
	media int8   // media.name_patterns verdict: 0 not known yet, 1 no, 2 yes
	// children are the keys met in maps of this name, up to maxChildren;
	// wide: there were more. next is the child after the one last found
	// in the map being flattened.
	children []childName
	wide     bool
	next     int
}

type childName struct {
	key  string
	name *nameInfo
}

// state is the per-call scratch space, pooled to keep allocations per record low.
type state struct {
	fields       []field
	used         []bool
	order        []int
	names        []string
	declared     []string
	dropped      []string
	rest         []int
	buf          []byte
	jsonBuf      []byte
	body         pcommon.Map // scratch: the new body is built here, then moved
	spare        pcommon.Map // empty: takes the old body's entries, which become body
	intern       map[string]*nameInfo
	root         *nameInfo // the parent of top-level names
	gen          uint64    // numbers the records: nameInfo slots of older ones are stale
	orders       map[orderKey]*orderEntry
	orderFields  int         // fields over all orders
	entry        *orderEntry // the record's cached order, if any
	changed      bool
	bodyOrder    bool // the body's keys are the declared order (collectBody adds them)
	rule         *Rule
	kinds        []uint8
	counts       map[string]int64
	capped       int64                   // records of the delivery over max_columns
	cappedModel  string                  // the model of the last of them
	badTimes     int64                   // records of the delivery whose timestamp was not a scoring time
	badTime      pcommon.Timestamp       // the last such timestamp
	badTimeModel string                  // and its record's model
	ids          contract.CorrelationIDs // generated correlation ids of the delivery
}

func (st *state) reset() {
	st.fields = st.fields[:0]
	st.gen++
	if len(st.intern) >= maxIntern {
		clear(st.intern)
		st.root = &nameInfo{}
		clear(st.orders) // they refer to the interned names
		st.orderFields = 0
	}
	st.order = st.order[:0]
	st.names = st.names[:0]
	st.declared = st.declared[:0]
	st.dropped = st.dropped[:0]
	st.changed = false
	st.bodyOrder = false
	st.rule = nil
	st.entry = nil
}

func (f *flattener) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	st := f.pool.Get().(*state)
	defer f.pool.Put(st)
	if st.counts == nil {
		st.counts = map[string]int64{}
	}
	clear(st.counts)
	st.capped, st.badTimes = 0, 0
	st.ids.Reset()
	arrival := pcommon.NewTimestampFromTime(time.Now())
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource()
		resourceMapped := false
		for _, sl := range rl.ScopeLogs().All() {
			recs := sl.LogRecords()
			if f.cfg.GenAI.Enabled {
				f.rewriteGenAI(recs, res, st.counts)
			}
			st.kinds = st.kinds[:0]
			explode := false
			for _, lr := range recs.All() {
				k := f.prepare(st, lr, res, arrival)
				st.kinds = append(st.kinds, k)
				if k != kindOther && !resourceMapped {
					f.mapResource(res)
					resourceMapped = true
				}
				explode = explode || k == kindExplode
			}
			if !explode {
				for i, lr := range recs.All() {
					if k := st.kinds[i]; k == kindRecord || k == kindContract {
						f.processRecord(st, lr, nil, k == kindContract)
					}
				}
				continue
			}
			out := plog.NewLogRecordSlice()
			out.EnsureCapacity(recs.Len())
			for i, lr := range recs.All() {
				switch st.kinds[i] {
				case kindExplode:
					f.explode(st, lr, out)
				default:
					nr := out.AppendEmpty()
					lr.MoveTo(nr)
					if k := st.kinds[i]; k == kindRecord || k == kindContract {
						f.processRecord(st, nr, nil, k == kindContract)
					}
				}
			}
			recs.RemoveIf(func(plog.LogRecord) bool { return true })
			out.MoveAndAppendTo(recs)
		}
	}
	for r, n := range st.counts {
		f.dropped.Add(ctx, n, f.reasonOpts[r])
	}
	if st.capped > 0 {
		if n, due := f.capWarn.add(st.capped); due {
			f.logger.Warn("Records with more feature columns than max_columns: the columns past the first max_columns were dropped (otelcol_featureflattener_dropped_values, reason max_columns); raise max_columns, or send fewer keys",
				zap.Int("max_columns", f.cfg.MaxColumns), zap.Int64("records", n), zap.String("model", st.cappedModel))
		}
	}
	if st.badTimes > 0 {
		if n, due := f.timeWarn.add(st.badTimes); due {
			f.logger.Warn("Records with a timestamp of 2^63 ns or more (after 2262-04-11, not a scoring time): each took its observed timestamp, else its arrival time (otelcol_featureflattener_dropped_values, reason timestamp_out_of_range); fix the sender's clock or time unit",
				zap.Int64("records", n), zap.Uint64("timestamp_unix_nano", uint64(st.badTime)), zap.String("model", st.badTimeModel))
		}
	}
	return ld, nil
}

// mapResource copies service.name to the contract's webservice attribute
// when the resource does not name a webservice.
func (f *flattener) mapResource(res pcommon.Resource) {
	if !f.cfg.ServiceNameToWebservice {
		return
	}
	attrs := res.Attributes()
	if _, ok := attrs.Get(contract.AttrWebservice); ok {
		return
	}
	if v, ok := attrs.Get("service.name"); ok && v.AsString() != "" {
		attrs.PutStr(contract.AttrWebservice, v.AsString())
	}
}

// lookup returns the first non-empty attribute of names, on the record first,
// then on the resource.
func lookup(rec, res pcommon.Map, names []string) string {
	for _, m := range [...]pcommon.Map{rec, res} {
		for _, n := range names {
			if v, ok := m.Get(n); ok {
				if s := v.AsString(); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// prepare maps a record's attributes to the contract and tells what it is.
// Records without a model name are not touched. A record without a
// correlation id gets its request's generated one, a record without any
// timestamp the delivery's arrival time (contract.CorrelationIDs, contract.FillTimestamp).
func (f *flattener) prepare(st *state, lr plog.LogRecord, res pcommon.Resource, arrival pcommon.Timestamp) uint8 {
	attrs, rattrs := lr.Attributes(), res.Attributes()
	contractForm := contract.IsModelData(lr)
	row := contract.Row{ModelName: lookup(attrs, rattrs, f.cfg.ModelNameAttributes)}
	if row.ModelName == "" {
		return kindOther
	}
	row.ModelVersion = lookup(attrs, rattrs, f.cfg.ModelVersionAttributes)
	row.Designation = lookup(attrs, rattrs, f.cfg.DesignationAttributes)
	row.RequestID = lookup(attrs, rattrs, f.cfg.RequestIDAttributes)
	row.CorrelationID = lookup(attrs, rattrs, f.cfg.CorrelationIDAttributes)
	if row.CorrelationID == "" {
		row.CorrelationID = st.ids.For(row.RequestID)
	}
	contract.PutRowAttributes(attrs, row, 0)
	if ts := contract.FillTimestamp(lr, arrival); ts != 0 {
		st.counts[reasonTimestamp]++
		st.badTimes++
		st.badTime, st.badTimeModel = ts, row.ModelName
	}
	if lr.EventName() == "" {
		lr.SetEventName(contract.EventName)
	}
	kind := uint8(kindRecord)
	if contractForm {
		kind = kindContract
	}
	if !f.cfg.FromBody {
		return kind
	}
	body := lr.Body()
	if body.Type() == pcommon.ValueTypeStr {
		parseJSONBody(body)
		kind = kindRecord // a body parsed from a JSON string has no key order to keep
	}
	if src, _ := f.batchSource(body); src.Type() == pcommon.ValueTypeSlice || isSplit(src) {
		return kindExplode
	}
	return kind
}

// batchSource returns the body value rows come from: the body_key value when
// the body has it, else the body itself.
func (f *flattener) batchSource(body pcommon.Value) (src pcommon.Value, keyed bool) {
	if f.cfg.BodyKey != "" && body.Type() == pcommon.ValueTypeMap {
		if v, ok := body.Map().Get(f.cfg.BodyKey); ok {
			return v, true
		}
	}
	return body, false
}

// isSplit reports the pandas "split" orientation: {"columns": [...], "data": [[...], ...]}.
func isSplit(v pcommon.Value) bool {
	if v.Type() != pcommon.ValueTypeMap {
		return false
	}
	cols, ok1 := v.Map().Get("columns")
	data, ok2 := v.Map().Get("data")
	return ok1 && ok2 && cols.Type() == pcommon.ValueTypeSlice && data.Type() == pcommon.ValueTypeSlice
}

// parseJSONBody replaces a string body holding a JSON object or array by its value.
func parseJSONBody(body pcommon.Value) {
	s := strings.TrimSpace(body.Str())
	if len(s) < 2 || (s[0] != '{' || s[len(s)-1] != '}') && (s[0] != '[' || s[len(s)-1] != ']') {
		return
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return
	}
	_ = body.FromRaw(fromJSON(raw))
}

// fromJSON turns json.Number into int64 when integral, else float64.
func fromJSON(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		fl, _ := t.Float64()
		return fl
	case map[string]any:
		for k, e := range t {
			t[k] = fromJSON(e)
		}
	case []any:
		for i, e := range t {
			t[i] = fromJSON(e)
		}
	}
	return v
}

// explode appends one record per row of lr's batch to out, each a copy of
// lr's attributes (ids included) with the row as body, and flattens them.
func (f *flattener) explode(st *state, lr plog.LogRecord, out plog.LogRecordSlice) {
	body := lr.Body()
	src, keyed := f.batchSource(body)
	var names []string
	rowsVal := src
	if isSplit(src) {
		cols, _ := src.Map().Get("columns")
		for _, c := range cols.Slice().All() {
			names = append(names, c.AsString())
		}
		rowsVal, _ = src.Map().Get("data")
	} else {
		names = f.declaredNames(lr)
		if len(names) == 0 {
			names = f.cfg.BatchColumns
		}
	}
	rows := rowsVal.Slice()
	// A slice of rows (each a map or an array) explodes; a slice of scalars
	// is one positional row; an empty batch has no rows, so no records.
	single := false
	for _, r := range rows.All() {
		if t := r.Type(); t != pcommon.ValueTypeMap && t != pcommon.ValueTypeSlice {
			single = true
			break
		}
	}
	emit := func(row pcommon.Value) {
		nr := out.AppendEmpty()
		copyRecordMeta(lr, nr)
		m := nr.Body().SetEmptyMap()
		var declared []string
		switch row.Type() {
		case pcommon.ValueTypeMap:
			row.Map().MoveTo(m)
		case pcommon.ValueTypeSlice:
			cells := row.Slice()
			m.EnsureCapacity(cells.Len())
			declared = make([]string, cells.Len())
			for i, c := range cells.All() {
				n := strconv.Itoa(i)
				if i < len(names) {
					n = names[i]
				}
				declared[i] = n
				c.CopyTo(m.PutEmpty(n))
			}
		}
		if keyed {
			for k, v := range body.Map().All() {
				if k == f.cfg.BodyKey {
					continue
				}
				if _, ok := m.Get(k); !ok {
					v.CopyTo(m.PutEmpty(k))
				}
			}
		}
		f.processRecord(st, nr, declared, false)
	}
	if single {
		emit(rowsVal)
		return
	}
	for _, r := range rows.All() {
		emit(r)
	}
}

func copyRecordMeta(from, to plog.LogRecord) {
	to.SetTimestamp(from.Timestamp())
	to.SetObservedTimestamp(from.ObservedTimestamp())
	to.SetSeverityNumber(from.SeverityNumber())
	to.SetSeverityText(from.SeverityText())
	to.SetFlags(from.Flags())
	to.SetTraceID(from.TraceID())
	to.SetSpanID(from.SpanID())
	to.SetEventName(from.EventName())
	to.SetDroppedAttributesCount(from.DroppedAttributesCount())
	from.Attributes().CopyTo(to.Attributes())
}

// declaredNames reads the record's declared column order: a slice of
// strings, or one comma-separated string.
func (f *flattener) declaredNames(lr plog.LogRecord) []string {
	return f.appendDeclared(nil, lr)
}

func (f *flattener) appendDeclared(dst []string, lr plog.LogRecord) []string {
	for _, n := range f.cfg.FeatureNamesAttributes {
		v, ok := lr.Attributes().Get(n)
		if !ok {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeSlice:
			for _, e := range v.Slice().All() {
				dst = append(dst, e.AsString())
			}
		case pcommon.ValueTypeStr:
			if v.Str() == "" {
				continue
			}
			for p := range strings.SplitSeq(v.Str(), ",") {
				dst = append(dst, strings.TrimSpace(p))
			}
		default:
			continue
		}
		return dst
	}
	return dst
}

// ruleFor returns the first rule matching the record's model and designation.
func (f *flattener) ruleFor(attrs pcommon.Map) *Rule {
	if len(f.cfg.Rules) == 0 {
		return nil
	}
	model, designation := "", contract.DefaultDesignation
	if v, ok := attrs.Get(contract.AttrModelName); ok {
		model = v.AsString()
	}
	if v, ok := attrs.Get(contract.AttrDesignation); ok && v.AsString() != "" {
		designation = v.AsString()
	}
	for i := range f.cfg.Rules {
		r := &f.cfg.Rules[i]
		if (r.Model == "" || r.Model == model) && (r.Designation == "" || r.Designation == designation) {
			return r
		}
	}
	return nil
}
