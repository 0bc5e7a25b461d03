package featureflattener

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// processRecord flattens one model data record in place. declared, when not
// nil, replaces the record's declared names (exploded rows). A record that
// came in contract form and declares no names has its body's order as its
// column order (contract.Columns); other records without declared names
// have their columns sorted, as an SDK's maps may list their keys in any
// order.
func (f *flattener) processRecord(st *state, lr plog.LogRecord, declared []string, contractForm bool) {
	st.reset()
	attrs := lr.Attributes()
	st.rule = f.ruleFor(attrs)
	if declared != nil {
		st.declared = append(st.declared, declared...)
	} else {
		st.declared = f.appendDeclared(st.declared, lr)
	}
	st.bodyOrder = contractForm && len(st.declared) == 0

	body := lr.Body()
	if f.cfg.FromBody {
		f.collectBody(st, body)
	}
	fromAttrs := f.collectAttributes(st, attrs)

	f.order(st)
	if f.capColumns(st) {
		st.capped++
		if v, ok := attrs.Get(contract.AttrModelName); ok {
			st.cappedModel = v.AsString()
		}
	}

	if st.changed || hasDrops(st) || !inFieldOrder(st) {
		rebuildBody(st, body)
	}
	if fromAttrs {
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool {
			_, ok := f.attributeFeature(k)
			return ok
		})
	}
	f.finishAttributes(st, lr)
}

// collectBody gathers the body's features into st's fields.
func (f *flattener) collectBody(st *state, body pcommon.Value) {
	switch body.Type() {
	case pcommon.ValueTypeMap:
		st.buf = st.buf[:0]
		f.flattenMap(st, 0, st.root, body.Map(), 0, true)
	case pcommon.ValueTypeEmpty:
	default:
		// A lone scalar: flatten a copy, as the body becomes a map.
		src := pcommon.NewValueEmpty()
		body.CopyTo(src)
		st.changed = true
		st.buf = append(st.buf[:0], scalarBodyColumn...)
		f.flattenValue(st, nil, len(st.buf), src, 0, false)
	}
}

// collectAttributes gathers the attributes configured as features into st's
// fields and reports whether there were any.
func (f *flattener) collectAttributes(st *state, attrs pcommon.Map) bool {
	if f.cfg.AttributePrefix == "" && len(f.cfg.Attributes) == 0 {
		return false
	}
	found := false
	for k, v := range attrs.All() {
		if name, ok := f.attributeFeature(k); ok {
			found = true
			st.changed = true
			st.buf = append(st.buf[:0], name...)
			f.flattenValue(st, nil, len(st.buf), v, 0, false)
		}
	}
	return found
}

// rebuildBody replaces the body with st's fields in st's order. The new body
// is built in the state's scratch map, then moved over the old entries: the
// fields point into those, so they must not be released before every value
// has moved out.
func rebuildBody(st *state, body pcommon.Value) {
	nb := st.body
	if st.entry != nil {
		// The names in order, without PutEmpty's search for each.
		st.entry.keys.CopyTo(nb)
	} else {
		nb.Clear()
		nb.EnsureCapacity(len(st.order))
		for _, i := range st.order {
			nb.PutEmpty(st.fields[i].name)
		}
	}
	j := 0
	for _, v := range nb.All() {
		fd := &st.fields[st.order[j]]
		j++
		if fd.hasVal {
			// Move, not copy: the old entries are discarded anyway.
			fd.val.MoveTo(v)
		}
		if fd.hasStr {
			v.SetStr(fd.str) // reuses a moved string value's storage
		}
	}
	if body.Type() != pcommon.ValueTypeMap {
		body.SetEmptyMap()
	}
	// The old entries, all values moved out, become the scratch map of the
	// next record: their storage is reused instead of allocated.
	body.Map().MoveTo(st.spare)
	nb.MoveTo(body.Map())
	st.body, st.spare = st.spare, st.body
}

// finishAttributes writes the feature names when the body's order cannot
// say the columns, and the dropped values' marker.
func (f *flattener) finishAttributes(st *state, lr plog.LogRecord) {
	attrs := lr.Attributes()
	// The body holds the kept columns in column order: without a list the
	// contract reads them from it, and a list costs an allocation per name
	// and per record. Only declared columns absent from the body (an empty
	// cell in their place) need one.
	switch _, listed := attrs.Get(contract.AttrFeatureNames); {
	case len(st.names) != len(st.order):
		if !sameNames(attrs, st.names) {
			contract.SetFeatureNames(lr, st.names)
		}
	case listed && !sameNames(attrs, st.names):
		attrs.Remove(contract.AttrFeatureNames)
	}
	if len(st.dropped) > 0 {
		slices.Sort(st.dropped)
		f.putDropped(attrs, st.dropped)
	}
}

// inFieldOrder reports whether the column order is the fields' own: every
// field kept, in the order the body gave them.
func inFieldOrder(st *state) bool {
	if len(st.order) != len(st.fields) {
		return false
	}
	for j, i := range st.order {
		if i != j {
			return false
		}
	}
	return true
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

// The name of the column being flattened is built in st.buf: a nested
// value appends its key to its parent's name. Names are interned, so the
// same names in every record cost no allocation; st.child finds most by
// their key among their parent's children, without hashing the name.

// flattenMap adds the columns of a map; st.buf[:prefixLen] is their common
// prefix, the name of parent (st.root at the top).
func (f *flattener) flattenMap(st *state, prefixLen int, parent *nameInfo, m pcommon.Map, depth int, top bool) {
	media := f.declaresMedia(m)
	parent.next = 0
	for k, v := range m.All() {
		if top && f.cfg.BodyKey != "" && k == f.cfg.BodyKey && v.Type() == pcommon.ValueTypeMap {
			st.changed = true
			f.flattenMap(st, prefixLen, parent, v.Map(), depth+1, false)
			continue
		}
		if top && st.bodyOrder {
			// The body's keys are the declared order; a nested map's
			// columns take its key's place.
			st.declared = append(st.declared, k)
		}
		st.buf = append(st.buf[:prefixLen], k...)
		f.flattenValue(st, st.child(parent, k, len(st.buf)), len(st.buf), v, depth, media && !f.isContentTypeKey(k))
	}
}

// flattenValue adds the column(s) of one value named st.buf[:nameLen]; n
// is that name interned, or nil.
func (f *flattener) flattenValue(st *state, n *nameInfo, nameLen int, v pcommon.Value, depth int, inMediaMap bool) {
	if n == nil {
		n = st.name(nameLen)
	}
	switch v.Type() {
	case pcommon.ValueTypeMap:
		st.changed = true
		if depth >= maxDepth {
			f.addJSON(st, n, v)
			return
		}
		st.buf = append(st.buf[:nameLen], f.cfg.Separator...)
		f.flattenMap(st, len(st.buf), n, v.Map(), depth+1, false)
	case pcommon.ValueTypeSlice:
		st.changed = true
		if f.cfg.Arrays == ArraysIndex && depth < maxDepth {
			for i, e := range v.Slice().All() {
				st.buf = strconv.AppendInt(append(st.buf[:nameLen], f.cfg.Separator...), int64(i), 10)
				f.flattenValue(st, nil, len(st.buf), e, depth+1, inMediaMap)
			}
			return
		}
		if inMediaMap {
			f.drop(st, n, reasonContentType)
			return
		}
		f.addJSON(st, n, v)
	case pcommon.ValueTypeBytes:
		f.drop(st, n, reasonBytes)
	case pcommon.ValueTypeStr:
		s := v.Str()
		r := f.valueMediaReason(s, inMediaMap)
		if r == "" && f.nameIsMediaMemo(n) {
			r = reasonName
		}
		if r != "" {
			f.drop(st, n, r)
			return
		}
		if f.cfg.NormalizeTimestamps {
			if ts, ok := normalizeTimestamp(s); ok {
				st.changed = true
				f.add(st, field{name: n.name, info: n, val: v, hasVal: true, str: ts, hasStr: true})
				return
			}
		}
		f.add(st, field{name: n.name, info: n, val: v, hasVal: true})
	default: // bool, int, double, empty
		f.add(st, field{name: n.name, info: n, val: v, hasVal: true})
	}
}

// child returns the interned name st.buf[:n], key k of the map named
// parent. Maps of one name usually repeat their keys in the same order, so
// the key after the previous one is tried first; then the keys met under
// parent before, when they are few; else the intern table.
func (st *state) child(parent *nameInfo, k string, n int) *nameInfo {
	if c := parent.next; c < len(parent.children) && parent.children[c].key == k {
		parent.next++
		return parent.children[c].name
	}
	if !parent.wide {
		for i, c := range parent.children {
			if c.key == k {
				parent.next = i + 1
				return c.name
			}
		}
	}
	ni := st.name(n)
	if len(parent.children) < maxChildren {
		parent.children = append(parent.children, childName{k, ni})
		parent.next = len(parent.children)
	} else {
		parent.wide = true
	}
	return ni
}

// name returns the interned name st.buf[:n].
func (st *state) name(n int) *nameInfo {
	if ni, ok := st.intern[string(st.buf[:n])]; ok {
		return ni
	}
	return st.info(string(st.buf[:n]))
}

// info returns the interned name s.
func (st *state) info(s string) *nameInfo {
	if ni, ok := st.intern[s]; ok {
		return ni
	}
	ni := &nameInfo{name: s, hash: maphash.String(hashSeed, s)}
	st.intern[s] = ni
	return ni
}

// slot returns the index of the record's first field named n (-1: a
// declared column absent from the record), if the record has one.
func (st *state) slot(n *nameInfo) (int, bool) {
	return n.idx, n.gen == st.gen
}

func (st *state) setSlot(n *nameInfo, i int) {
	n.gen, n.idx = st.gen, i
}

// nameIsMediaMemo is nameIsMedia, remembered with the interned name.
func (f *flattener) nameIsMediaMemo(n *nameInfo) bool {
	if n.media == 0 {
		n.media = 1
		if f.nameIsMedia(n.name) {
			n.media = 2
		}
	}
	return n.media == 2
}

// addJSON adds a map or slice as one JSON cell, unless a part of it is media.
func (f *flattener) addJSON(st *state, n *nameInfo, v pcommon.Value) {
	if r := f.nestedMediaReason(n.name, v, 0); r != "" {
		f.drop(st, n, r)
		return
	}
	st.jsonBuf = contract.AppendValue(st.jsonBuf[:0], v)
	s := string(st.jsonBuf)
	if f.cfg.Media.MaxValueSize > 0 && len(s) > f.cfg.Media.MaxValueSize {
		f.drop(st, n, reasonSize)
		return
	}
	f.add(st, field{name: n.name, info: n, str: s, hasStr: true})
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
		fd.name, fd.info = to, st.info(to)
		st.changed = true
	}
	if _, dup := st.slot(fd.info); dup {
		fd.reason = reasonDuplicate
		st.counts[reasonDuplicate]++
		st.fields = append(st.fields, fd)
		return
	}
	if f.excluded(st, fd.name) {
		fd.reason = reasonExcluded
		st.counts[reasonExcluded]++
	}
	st.setSlot(fd.info, len(st.fields))
	st.fields = append(st.fields, fd)
}

// drop records a column removed as media.
func (f *flattener) drop(st *state, n *nameInfo, reason string) {
	if to := st.renamed(n.name); to != n.name {
		n = st.info(to)
	}
	st.counts[reason]++
	st.dropped = append(st.dropped, n.name)
	if _, dup := st.slot(n); !dup {
		st.setSlot(n, len(st.fields))
	}
	st.fields = append(st.fields, field{name: n.name, info: n, reason: reason})
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
//
// The order depends only on the rule, the declared names and the set of
// column names, so a record laid out like an earlier one (its keys in any
// order) reuses that one's order instead of sorting. Records that drop a
// value, and allow_new_columns: false (which drops), are not cached.
func (f *flattener) order(st *state) {
	cacheable := f.cfg.AllowNewColumns && !hasDrops(st) && len(st.fields) <= f.cfg.MaxColumns
	var key orderKey
	if cacheable {
		key = st.orderKey()
		if e := st.orders[key]; e != nil && st.useOrder(e) {
			st.entry = e
			return
		}
		defer func() { st.entry = st.storeOrder(key) }()
	}
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
		if i, ok := st.slot(st.info(name)); ok {
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
		st.setSlot(st.info(d), -1)
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

// capColumns keeps the first max_columns feature columns of the record, in
// column order, and drops the values of the rest (reason max_columns), as
// the collect route refuses wider rows: a body of thousands of keys would
// make a file of thousands of columns. The dropped names are counted, not
// listed in modeldata.dropped_columns, whose size they would make unbounded.
// It reports whether it dropped any.
func (f *flattener) capColumns(st *state) bool {
	limit := f.cfg.MaxColumns
	if len(st.names) <= limit {
		return false
	}
	st.entry = nil // the body is rebuilt from st.order
	kept, col := st.order[:0], 0
	for _, i := range st.order {
		// st.order's names are st.names in the same order, bar the
		// declared columns absent from the record.
		for col < len(st.names) && st.names[col] != st.fields[i].name {
			col++
		}
		if col < limit {
			kept = append(kept, i)
			continue
		}
		st.fields[i].reason = reasonMaxColumns
		st.counts[reasonMaxColumns]++
	}
	st.order, st.names = kept, st.names[:limit]
	return true
}

// orderKey identifies a record's layout: its rule, its declared names and,
// as a sum of their hashes, the set of its column names.
type orderKey struct {
	rule     *Rule
	declared uint64
	names    uint64
	n        int
}

// orderEntry is the column order of one layout.
type orderEntry struct {
	declared []string
	fields   []*nameInfo // every field, in column order
	names    []string    // the feature names (st.names)
	keys     pcommon.Map // the fields' names in column order, empty values
}

func (st *state) orderKey() orderKey {
	k := orderKey{rule: st.rule, n: len(st.fields)}
	for _, d := range st.declared {
		k.declared = k.declared*31 + maphash.String(hashSeed, d)
	}
	for i := range st.fields {
		k.names += st.fields[i].info.hash
	}
	return k
}

// useOrder applies e if it is the order of this record's layout: same
// declared names, and e's fields are exactly this record's (the names of a
// record without drops are distinct, so the same count, all present, is
// the same set).
func (st *state) useOrder(e *orderEntry) bool {
	if len(e.fields) != len(st.fields) || !slices.Equal(e.declared, st.declared) {
		return false
	}
	for _, n := range e.fields {
		if _, ok := st.slot(n); !ok {
			return false
		}
	}
	for _, n := range e.fields {
		st.order = append(st.order, n.idx)
	}
	st.names = append(st.names, e.names...)
	return true
}

// storeOrder remembers the order just computed, within bounds.
func (st *state) storeOrder(key orderKey) *orderEntry {
	if old := st.orders[key]; old != nil { // another layout with the same key
		st.orderFields -= len(old.fields)
	}
	if len(st.orders) >= maxOrders || st.orderFields+len(st.order) > maxOrderFields {
		clear(st.orders)
		st.orderFields = 0
	}
	e := &orderEntry{declared: slices.Clone(st.declared), fields: make([]*nameInfo, len(st.order)),
		names: slices.Clone(st.names), keys: pcommon.NewMap()}
	e.keys.EnsureCapacity(len(st.order))
	for j, i := range st.order {
		e.fields[j] = st.fields[i].info
		e.keys.PutEmpty(st.fields[i].name)
	}
	st.orders[key] = e
	st.orderFields += len(e.fields)
	return e
}

func (f *flattener) sortByName(st *state, idx []int) {
	if len(idx) > 32 {
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(st.fields[a].name, st.fields[b].name) })
		return
	}
	// Insertion sort: a record's columns are few and usually nearly sorted.
	for i := 1; i < len(idx); i++ {
		x := idx[i]
		name := st.fields[x].name
		j := i
		for ; j > 0 && st.fields[idx[j-1]].name > name; j-- {
			idx[j] = idx[j-1]
		}
		idx[j] = x
	}
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
