package featureflattener

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

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
)

// What prepare found a record to be.
const (
	kindOther   = iota // not model data: untouched
	kindRecord         // model data, one row
	kindExplode        // model data carrying a batch: one record per row
)

type flattener struct {
	cfg          *Config
	rulesByModel []Rule
	columnsSet   bool
	mediaNames   *regexp.Regexp
	ctKeys       []string
	ctKeyLens    uint64 // bit n set when some content type key is n bytes long
	nameCache    sync.Map
	nameCacheLen atomic.Int64
	pool         sync.Pool

	dropped    metric.Int64Counter
	reasonOpts map[string]metric.AddOption
}

func newFlattener(cfg *Config, meter metric.Meter) (*flattener, error) {
	f := &flattener{cfg: cfg, ctKeys: cfg.Media.ContentTypeKeys, reasonOpts: map[string]metric.AddOption{}}
	if len(cfg.Media.NamePatterns) > 0 {
		re, err := regexp.Compile("(?i)(?:" + strings.Join(cfg.Media.NamePatterns, ")|(?:") + ")")
		if err != nil {
			return nil, err
		}
		f.mediaNames = re
	}
	for _, k := range f.ctKeys {
		if len(k) < 64 {
			f.ctKeyLens |= 1 << len(k)
		}
	}
	var err error
	f.dropped, err = meter.Int64Counter("featureflattener_dropped_values",
		metric.WithDescription("Feature values the featureflattener removed, by reason (media payloads, duplicates, excluded or unlisted columns)."),
		metric.WithUnit("{value}"))
	if err != nil {
		return nil, err
	}
	for _, r := range allReasons {
		f.reasonOpts[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	f.pool.New = func() any { return &state{index: map[string]int{}} }
	return f, nil
}

// field is one flattened column of a record.
type field struct {
	name   string
	val    pcommon.Value // the source value, when str is unset
	str    string        // replacement string value (JSON cell, normalized timestamp)
	hasStr bool
	reason string // non-empty: the value is dropped for this reason
}

// state is the per-call scratch space, pooled to keep allocations per record low.
type state struct {
	fields   []field
	index    map[string]int
	used     []bool
	order    []int
	names    []string
	declared []string
	dropped  []string
	rest     []int
	changed  bool
	rule     *Rule
	kinds    []uint8
	counts   map[string]int64
}

func (st *state) reset() {
	st.fields = st.fields[:0]
	clear(st.index)
	st.order = st.order[:0]
	st.names = st.names[:0]
	st.declared = st.declared[:0]
	st.dropped = st.dropped[:0]
	st.changed = false
	st.rule = nil
}

func (f *flattener) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	st := f.pool.Get().(*state)
	defer f.pool.Put(st)
	if st.counts == nil {
		st.counts = map[string]int64{}
	}
	clear(st.counts)
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource()
		resourceMapped := false
		for _, sl := range rl.ScopeLogs().All() {
			recs := sl.LogRecords()
			st.kinds = st.kinds[:0]
			explode := false
			for _, lr := range recs.All() {
				k := f.prepare(lr, res)
				st.kinds = append(st.kinds, k)
				if k != kindOther && !resourceMapped {
					f.mapResource(res)
					resourceMapped = true
				}
				explode = explode || k == kindExplode
			}
			if !explode {
				for i, lr := range recs.All() {
					if st.kinds[i] == kindRecord {
						f.processRecord(st, lr, nil, false)
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
					if st.kinds[i] == kindRecord {
						f.processRecord(st, nr, nil, false)
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
	for _, m := range []pcommon.Map{rec, res} {
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
// Records without a model name are not touched.
func (f *flattener) prepare(lr plog.LogRecord, res pcommon.Resource) uint8 {
	attrs, rattrs := lr.Attributes(), res.Attributes()
	name := lookup(attrs, rattrs, f.cfg.ModelNameAttributes)
	if name == "" {
		return kindOther
	}
	// Set a contract attribute unless the record already has that string.
	putContract := func(key, value string) {
		if value == "" {
			return
		}
		if v, ok := attrs.Get(key); ok && v.Type() == pcommon.ValueTypeStr && v.Str() == value {
			return
		}
		attrs.PutStr(key, value)
	}
	putContract(contract.AttrModelName, name)
	for _, m := range []struct {
		key   string
		names []string
	}{
		{contract.AttrModelVersion, f.cfg.ModelVersionAttributes},
		{contract.AttrDesignation, f.cfg.DesignationAttributes},
		{contract.AttrRequestID, f.cfg.RequestIDAttributes},
		{contract.AttrCorrelationID, f.cfg.CorrelationIDAttributes},
	} {
		putContract(m.key, lookup(attrs, rattrs, m.names))
	}
	if lr.Timestamp() == 0 && lr.ObservedTimestamp() != 0 {
		lr.SetTimestamp(lr.ObservedTimestamp())
	}
	if lr.EventName() == "" {
		lr.SetEventName(contract.EventName)
	}
	if !f.cfg.FromBody {
		return kindRecord
	}
	body := lr.Body()
	if body.Type() == pcommon.ValueTypeStr {
		parseJSONBody(body)
	}
	if src, _ := f.batchSource(body); src.Type() == pcommon.ValueTypeSlice || isSplit(src) {
		return kindExplode
	}
	return kindRecord
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
		f.processRecord(st, nr, declared, declared != nil)
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

// processRecord flattens one model data record in place. declared, when
// override is set, replaces the record's declared names (exploded rows).
func (f *flattener) processRecord(st *state, lr plog.LogRecord, declared []string, override bool) {
	st.reset()
	attrs := lr.Attributes()
	st.rule = f.ruleFor(attrs)
	if override {
		st.declared = append(st.declared, declared...)
	} else {
		st.declared = f.appendDeclared(st.declared, lr)
	}

	body := lr.Body()
	if f.cfg.FromBody {
		switch body.Type() {
		case pcommon.ValueTypeMap:
			f.flattenMap(st, "", body.Map(), 0, true)
		case pcommon.ValueTypeEmpty:
		default:
			// A lone scalar: flatten a copy, as the body becomes a map.
			src := pcommon.NewValueEmpty()
			body.CopyTo(src)
			st.changed = true
			f.flattenValue(st, scalarBodyColumn, src, 0, false)
		}
	}
	fromAttrs := false
	if f.cfg.AttributePrefix != "" || len(f.cfg.Attributes) > 0 {
		for k, v := range attrs.All() {
			if name, ok := f.attributeFeature(k); ok {
				fromAttrs = true
				st.changed = true
				f.flattenValue(st, name, v, 0, false)
			}
		}
	}

	f.order(st)

	if st.changed || hasDrops(st) {
		if body.Type() == pcommon.ValueTypeMap {
			// Move the old entries out first: the fields point into them,
			// and SetEmptyMap would release them otherwise.
			body.Map().MoveTo(pcommon.NewMap())
		}
		nb := body.SetEmptyMap()
		nb.EnsureCapacity(len(st.order))
		for _, i := range st.order {
			fd := &st.fields[i]
			if fd.hasStr {
				nb.PutStr(fd.name, fd.str)
			} else {
				fd.val.CopyTo(nb.PutEmpty(fd.name))
			}
		}
	}
	if fromAttrs {
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool {
			_, ok := f.attributeFeature(k)
			return ok
		})
	}
	if !sameNames(attrs, st.names) {
		contract.SetFeatureNames(lr, st.names)
	}
	if len(st.dropped) > 0 {
		slices.Sort(st.dropped)
		f.putDropped(attrs, st.dropped)
	}
}

func hasDrops(st *state) bool {
	for i := range st.fields {
		if st.fields[i].reason != "" {
			return true
		}
	}
	return false
}

// attributeFeature tells whether a record attribute is a feature source and
// under which column name.
func (f *flattener) attributeFeature(k string) (string, bool) {
	if strings.HasPrefix(k, "modeldata.") {
		return "", false
	}
	if slices.Contains(f.cfg.Attributes, k) {
		return k, true
	}
	if p := f.cfg.AttributePrefix; p != "" && len(k) > len(p) && strings.HasPrefix(k, p) {
		return k[len(p):], true
	}
	return "", false
}

func sameNames(attrs pcommon.Map, names []string) bool {
	v, ok := attrs.Get(contract.AttrFeatureNames)
	if !ok || v.Type() != pcommon.ValueTypeSlice || v.Slice().Len() != len(names) {
		return false
	}
	for i, e := range v.Slice().All() {
		if e.Type() != pcommon.ValueTypeStr || e.Str() != names[i] {
			return false
		}
	}
	return true
}

// putDropped adds names to modeldata.dropped_columns, keeping names an
// earlier pass recorded.
func (f *flattener) putDropped(attrs pcommon.Map, names []string) {
	v, ok := attrs.Get(contract.AttrDroppedColumns)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		v = attrs.PutEmpty(contract.AttrDroppedColumns)
		v.SetEmptySlice()
	}
	s := v.Slice()
	for _, n := range names {
		found := false
		for _, e := range s.All() {
			if e.Str() == n {
				found = true
				break
			}
		}
		if !found {
			s.AppendEmpty().SetStr(n)
		}
	}
}

// flattenMap adds the columns of a map, each named prefix+key.
func (f *flattener) flattenMap(st *state, prefix string, m pcommon.Map, depth int, top bool) {
	media := f.declaresMedia(m)
	for k, v := range m.All() {
		if top && f.cfg.BodyKey != "" && k == f.cfg.BodyKey && v.Type() == pcommon.ValueTypeMap {
			st.changed = true
			f.flattenMap(st, "", v.Map(), depth+1, false)
			continue
		}
		name := k
		if prefix != "" {
			name = prefix + k
		}
		f.flattenValue(st, name, v, depth, media && !f.isContentTypeKey(k))
	}
}

// flattenValue adds the column(s) of one value.
func (f *flattener) flattenValue(st *state, name string, v pcommon.Value, depth int, inMediaMap bool) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		st.changed = true
		if depth >= maxDepth {
			f.addJSON(st, name, v)
			return
		}
		f.flattenMap(st, name+f.cfg.Separator, v.Map(), depth+1, false)
	case pcommon.ValueTypeSlice:
		st.changed = true
		if f.cfg.Arrays == ArraysIndex && depth < maxDepth {
			for i, e := range v.Slice().All() {
				f.flattenValue(st, name+f.cfg.Separator+strconv.Itoa(i), e, depth+1, inMediaMap)
			}
			return
		}
		if inMediaMap {
			f.drop(st, name, reasonContentType)
			return
		}
		f.addJSON(st, name, v)
	case pcommon.ValueTypeBytes:
		f.drop(st, name, reasonBytes)
	case pcommon.ValueTypeStr:
		s := v.Str()
		if r := f.stringMediaReason(name, s, inMediaMap); r != "" {
			f.drop(st, name, r)
			return
		}
		if f.cfg.NormalizeTimestamps {
			if ts, ok := normalizeTimestamp(s); ok {
				st.changed = true
				f.add(st, field{name: name, str: ts, hasStr: true})
				return
			}
		}
		f.add(st, field{name: name, val: v})
	default: // bool, int, double, empty
		f.add(st, field{name: name, val: v})
	}
}

// addJSON adds a map or slice as one JSON cell, unless a part of it is media.
func (f *flattener) addJSON(st *state, name string, v pcommon.Value) {
	if r := f.nestedMediaReason(name, v, 0); r != "" {
		f.drop(st, name, r)
		return
	}
	s := contract.FormatValue(v)
	if f.cfg.Media.MaxValueSize > 0 && len(s) > f.cfg.Media.MaxValueSize {
		f.drop(st, name, reasonSize)
		return
	}
	f.add(st, field{name: name, str: s, hasStr: true})
}

// nestedMediaReason finds media anywhere inside a value written as JSON.
func (f *flattener) nestedMediaReason(name string, v pcommon.Value, depth int) string {
	switch v.Type() {
	case pcommon.ValueTypeBytes:
		return reasonBytes
	case pcommon.ValueTypeStr:
		return f.stringMediaReason(name, v.Str(), false)
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			if r := f.nestedMediaReason(name, e, depth+1); r != "" {
				return r
			}
		}
	case pcommon.ValueTypeMap:
		media := f.declaresMedia(v.Map())
		for k, e := range v.Map().All() {
			if media && !f.isContentTypeKey(k) && (e.Type() == pcommon.ValueTypeStr || e.Type() == pcommon.ValueTypeBytes) {
				return reasonContentType
			}
			if r := f.nestedMediaReason(k, e, depth+1); r != "" {
				return r
			}
		}
	}
	return ""
}

// stringMediaReason tells why a string value is media, or "".
func (f *flattener) stringMediaReason(name, s string, inMediaMap bool) string {
	switch {
	case inMediaMap:
		return reasonContentType
	case f.cfg.Media.MaxValueSize > 0 && len(s) > f.cfg.Media.MaxValueSize:
		return reasonSize
	case isDataURI(s):
		return reasonDataURI
	case isBase64Media(s):
		return reasonBase64Media
	case f.nameIsMedia(name):
		return reasonName
	}
	return ""
}

// nameIsMedia matches a column name against media.name_patterns, caching
// verdicts since the same names come back in every record.
func (f *flattener) nameIsMedia(name string) bool {
	if f.mediaNames == nil {
		return false
	}
	if v, ok := f.nameCache.Load(name); ok {
		return v.(bool)
	}
	match := f.mediaNames.MatchString(name)
	if f.nameCacheLen.Load() < maxNameCache {
		if _, loaded := f.nameCache.LoadOrStore(name, match); !loaded {
			f.nameCacheLen.Add(1)
		}
	}
	return match
}

// declaresMedia reports whether a map carries a content type key whose value
// is an image/audio/video type: its other string and byte values are the payload.
func (f *flattener) declaresMedia(m pcommon.Map) bool {
	if len(f.ctKeys) == 0 || len(f.cfg.Media.ContentTypes) == 0 {
		return false
	}
	for k, v := range m.All() {
		if !f.isContentTypeKey(k) || v.Type() != pcommon.ValueTypeStr {
			continue
		}
		ct := strings.ToLower(strings.TrimSpace(v.Str()))
		for _, p := range f.cfg.Media.ContentTypes {
			if strings.HasPrefix(ct, strings.ToLower(p)) {
				return true
			}
		}
	}
	return false
}

func (f *flattener) isContentTypeKey(k string) bool {
	if len(k) >= 64 || f.ctKeyLens&(1<<len(k)) == 0 {
		return false
	}
	return slices.Contains(f.ctKeys, k)
}

// renamed applies the record's rule to a column name.
func (st *state) renamed(name string) string {
	if st.rule != nil && st.rule.Rename != nil {
		if to, ok := st.rule.Rename[name]; ok {
			return to
		}
	}
	return name
}

// add records a kept column, or drops it as a duplicate or excluded.
func (f *flattener) add(st *state, fd field) {
	if to := st.renamed(fd.name); to != fd.name {
		fd.name = to
		st.changed = true
	}
	if _, dup := st.index[fd.name]; dup {
		fd.reason = reasonDuplicate
		st.counts[reasonDuplicate]++
		st.fields = append(st.fields, fd)
		return
	}
	if f.excluded(st, fd.name) {
		fd.reason = reasonExcluded
		st.counts[reasonExcluded]++
	}
	st.index[fd.name] = len(st.fields)
	st.fields = append(st.fields, fd)
}

// drop records a column removed as media.
func (f *flattener) drop(st *state, name, reason string) {
	name = st.renamed(name)
	st.counts[reason]++
	st.dropped = append(st.dropped, name)
	if _, dup := st.index[name]; !dup {
		st.index[name] = len(st.fields)
	}
	st.fields = append(st.fields, field{name: name, reason: reason})
}

// excluded applies the rule's include/exclude lists; a listed name also
// covers its nested columns (name + separator + ...).
func (f *flattener) excluded(st *state, name string) bool {
	if st.rule == nil {
		return false
	}
	if len(st.rule.Include) > 0 {
		return !f.listed(st.rule.Include, name)
	}
	return f.listed(st.rule.Exclude, name)
}

func (f *flattener) listed(list []string, name string) bool {
	for _, l := range list {
		if name == l || len(name) > len(l)+len(f.cfg.Separator) && strings.HasPrefix(name, l) && strings.HasPrefix(name[len(l):], f.cfg.Separator) {
			return true
		}
	}
	return false
}

// order fills st.order (kept fields, in column order) and st.names (the
// feature names: st.order's names plus declared columns absent from this record).
func (f *flattener) order(st *state) {
	st.used = slices.Grow(st.used[:0], len(st.fields))[:len(st.fields)]
	clear(st.used)
	emit := func(i int) {
		if !st.used[i] && st.fields[i].reason == "" {
			st.used[i] = true
			st.order = append(st.order, i)
			st.names = append(st.names, st.fields[i].name)
		}
	}
	// place emits a named column, or the nested columns under it; it
	// reports whether the name is known to this record at all.
	place := func(name string) bool {
		if i, ok := st.index[name]; ok {
			if i >= 0 {
				emit(i)
			}
			return true
		}
		prefix := name + f.cfg.Separator
		st.rest = st.rest[:0]
		for i := range st.fields {
			if !st.used[i] && st.fields[i].reason == "" && strings.HasPrefix(st.fields[i].name, prefix) {
				st.rest = append(st.rest, i)
			}
		}
		f.sortByName(st, st.rest)
		for _, i := range st.rest {
			emit(i)
		}
		return len(st.rest) > 0
	}
	for _, d := range st.declared {
		d = st.renamed(d)
		if place(d) || f.excluded(st, d) {
			continue
		}
		// A declared column absent from this record keeps its place (an empty cell).
		st.index[d] = -1
		st.names = append(st.names, d)
	}
	columns := f.cfg.Columns
	if st.rule != nil && len(st.rule.Columns) > 0 {
		columns = st.rule.Columns
	}
	for _, c := range columns {
		place(c)
	}
	st.rest = st.rest[:0]
	for i := range st.fields {
		if !st.used[i] && st.fields[i].reason == "" {
			st.rest = append(st.rest, i)
		}
	}
	if !f.cfg.AllowNewColumns {
		for _, i := range st.rest {
			st.fields[i].reason = reasonUnlisted
			st.counts[reasonUnlisted]++
		}
		return
	}
	f.sortByName(st, st.rest)
	for _, i := range st.rest {
		emit(i)
	}
}

func (f *flattener) sortByName(st *state, idx []int) {
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(st.fields[a].name, st.fields[b].name) })
}

// normalizeTimestamp rewrites an RFC 3339 timestamp with a numeric offset
// to RFC 3339 UTC ("Z"). Timestamps already in UTC or without offset, and
// anything else, are left alone.
func normalizeTimestamp(s string) (string, bool) {
	if len(s) < 25 || len(s) > 40 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' {
		return "", false
	}
	if o := s[len(s)-6]; (o != '+' && o != '-') || s[len(s)-3] != ':' {
		return "", false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", false
	}
	return t.UTC().Format(time.RFC3339Nano), true
}
