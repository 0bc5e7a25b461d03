package featureflattener

import (
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// wantRow is one record expected downstream.
type wantRow struct {
	body    map[string]any // the whole body
	names   []string       // modeldata.feature_names
	dropped []string       // modeldata.dropped_columns (nil: absent)
	attrs   map[string]any // a subset of the record attributes
	absent  []string       // record attributes that must not be there
}

// model attributes as an OTel SDK user would set them.
var sdkAttrs = map[string]any{"model.name": "churn", "model.version": "3", "request.id": "r-1", "correlation.id": "c-1"}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestRules(t *testing.T) {
	png, wav, mp4 := pngHead(), wavHead(), mp4Head()
	tests := []struct {
		name    string
		cfg     func(*Config)
		res     map[string]any
		attrs   map[string]any
		body    any
		want    []wantRow
		reasons map[string]int64
	}{
		{
			name:  "mapping: model.* record attributes and service.name",
			res:   map[string]any{"service.name": "scoring-svc"},
			attrs: sdkAttrs,
			body:  map[string]any{"age": int64(31)},
			want: []wantRow{{
				body: map[string]any{"age": int64(31)}, names: []string{"age"},
				attrs: map[string]any{contract.AttrModelName: "churn", contract.AttrModelVersion: "3",
					contract.AttrRequestID: "r-1", contract.AttrCorrelationID: "c-1"},
			}},
		},
		{
			name:  "mapping: model name and integer version on the resource",
			res:   map[string]any{"model.name": "churn", "model.version": int64(7)},
			attrs: map[string]any{},
			body:  map[string]any{"age": int64(31)},
			want: []wantRow{{body: map[string]any{"age": int64(31)}, names: []string{"age"},
				attrs: map[string]any{contract.AttrModelName: "churn", contract.AttrModelVersion: "7"}}},
		},
		{
			name:  "nested maps flatten with the separator",
			attrs: sdkAttrs,
			body:  map[string]any{"input": map[string]any{"age": int64(31), "address": map[string]any{"zip": "98052"}}},
			want: []wantRow{{body: map[string]any{"input.address.zip": "98052", "input.age": int64(31)},
				names: []string{"input.address.zip", "input.age"}}},
		},
		{
			name:  "custom separator and body_key unwraps the input object",
			cfg:   func(c *Config) { c.Separator = "_"; c.BodyKey = "input" },
			attrs: sdkAttrs,
			body:  map[string]any{"input": map[string]any{"age": int64(31), "address": map[string]any{"zip": "98052"}}, "source": "web"},
			want: []wantRow{{body: map[string]any{"address_zip": "98052", "age": int64(31), "source": "web"},
				names: []string{"address_zip", "age", "source"}}},
		},
		{
			name:  "arrays of scalars: one JSON cell by default",
			attrs: sdkAttrs,
			body:  map[string]any{"scores": []any{0.5, int64(2), "x", true, nil}, "empty": []any{}},
			want: []wantRow{{body: map[string]any{"empty": "[]", "scores": `[0.5,2,"x",true,null]`},
				names: []string{"empty", "scores"}}},
		},
		{
			name:  "arrays: indexed columns",
			cfg:   func(c *Config) { c.Arrays = ArraysIndex },
			attrs: sdkAttrs,
			body:  map[string]any{"scores": []any{0.5, int64(2)}, "tags": []any{map[string]any{"k": "v"}}},
			want: []wantRow{{body: map[string]any{"scores.0": 0.5, "scores.1": int64(2), "tags.0.k": "v"},
				names: []string{"scores.0", "scores.1", "tags.0.k"}}},
		},
		{
			name:  "2-D batch with feature names in an attribute: one record per row, ids kept",
			attrs: with(sdkAttrs, contract.AttrFeatureNames, []any{"b", "a"}),
			body:  []any{[]any{int64(1), "x"}, []any{int64(2), "y"}},
			want: []wantRow{
				{body: map[string]any{"b": int64(1), "a": "x"}, names: []string{"b", "a"},
					attrs: map[string]any{contract.AttrRequestID: "r-1", contract.AttrCorrelationID: "c-1"}},
				{body: map[string]any{"b": int64(2), "a": "y"}, names: []string{"b", "a"},
					attrs: map[string]any{contract.AttrRequestID: "r-1", contract.AttrCorrelationID: "c-1"}},
			},
		},
		{
			name:  "2-D batch with names from batch_columns, row longer than the names",
			cfg:   func(c *Config) { c.BatchColumns = []string{"f0", "f1"} },
			attrs: sdkAttrs,
			body:  []any{[]any{int64(1), int64(2), int64(3)}},
			want:  []wantRow{{body: map[string]any{"f0": int64(1), "f1": int64(2), "2": int64(3)}, names: []string{"f0", "f1", "2"}}},
		},
		{
			name:  "batch of row objects under body_key, sibling keys copied to every row",
			cfg:   func(c *Config) { c.BodyKey = "instances" },
			attrs: sdkAttrs,
			body: map[string]any{"tenant": "t1", "instances": []any{
				map[string]any{"age": int64(31), "geo": map[string]any{"zip": "98052"}},
				map[string]any{"age": int64(40)},
			}},
			want: []wantRow{
				{body: map[string]any{"age": int64(31), "geo.zip": "98052", "tenant": "t1"}, names: []string{"age", "geo.zip", "tenant"}},
				{body: map[string]any{"age": int64(40), "tenant": "t1"}, names: []string{"age", "tenant"}},
			},
		},
		{
			name:  "pandas split orientation",
			attrs: sdkAttrs,
			body:  map[string]any{"columns": []any{"x", "y"}, "index": []any{int64(0), int64(1)}, "data": []any{[]any{1.5, int64(2)}, []any{2.5, int64(3)}}},
			want: []wantRow{
				{body: map[string]any{"x": 1.5, "y": int64(2)}, names: []string{"x", "y"}},
				{body: map[string]any{"x": 2.5, "y": int64(3)}, names: []string{"x", "y"}},
			},
		},
		{
			name:  "1-D array body is one positional row",
			attrs: with(sdkAttrs, contract.AttrFeatureNames, "a, b"),
			body:  []any{int64(1), int64(2)},
			want:  []wantRow{{body: map[string]any{"a": int64(1), "b": int64(2)}, names: []string{"a", "b"}}},
		},
		{
			name:  "empty batch yields no rows",
			attrs: sdkAttrs,
			body:  []any{},
			want:  nil,
		},
		{
			name:  "order: declared, then configured columns, then new columns sorted",
			cfg:   func(c *Config) { c.Columns = []string{"m", "geo"} },
			attrs: with(sdkAttrs, contract.AttrFeatureNames, []any{"z", "missing"}),
			body:  map[string]any{"a": int64(1), "z": int64(2), "m": int64(3), "b": int64(4), "geo": map[string]any{"zip": "1", "city": "c"}},
			want: []wantRow{{body: map[string]any{"a": int64(1), "z": int64(2), "m": int64(3), "b": int64(4), "geo.city": "c", "geo.zip": "1"},
				names: []string{"z", "missing", "m", "geo.city", "geo.zip", "a", "b"}}},
		},
		{
			name:    "allow_new_columns false drops unlisted columns",
			cfg:     func(c *Config) { c.AllowNewColumns = false; c.Columns = []string{"a"} },
			attrs:   with(sdkAttrs, contract.AttrFeatureNames, []any{"z"}),
			body:    map[string]any{"a": int64(1), "z": int64(2), "new": int64(3)},
			want:    []wantRow{{body: map[string]any{"a": int64(1), "z": int64(2)}, names: []string{"z", "a"}}},
			reasons: map[string]int64{reasonUnlisted: 1},
		},
		{
			name: "rule: rename and exclude for one model and designation",
			cfg: func(c *Config) {
				c.Rules = []Rule{
					{Model: "other", Exclude: []string{"age"}},
					{Model: "churn", Designation: "inputs", Rename: map[string]string{"input.age": "age"}, Exclude: []string{"debug"}},
				}
			},
			attrs:   with(sdkAttrs, contract.AttrDesignation, "inputs", contract.AttrFeatureNames, []any{"input.age"}),
			body:    map[string]any{"input": map[string]any{"age": int64(31)}, "debug": map[string]any{"trace": "t", "n": int64(1)}, "keep": true},
			want:    []wantRow{{body: map[string]any{"age": int64(31), "keep": true}, names: []string{"age", "keep"}}},
			reasons: map[string]int64{reasonExcluded: 2},
		},
		{
			name: "rule: include and its own columns order; designation defaults to general",
			cfg: func(c *Config) {
				c.Rules = []Rule{{Designation: "general", Include: []string{"b", "geo"}, Columns: []string{"geo", "b"}}}
			},
			attrs:   sdkAttrs,
			body:    map[string]any{"a": int64(1), "b": int64(2), "geo": map[string]any{"zip": "1"}},
			want:    []wantRow{{body: map[string]any{"b": int64(2), "geo.zip": "1"}, names: []string{"geo.zip", "b"}}},
			reasons: map[string]int64{reasonExcluded: 1},
		},
		{
			name:  "rule for another designation does not apply",
			cfg:   func(c *Config) { c.Rules = []Rule{{Designation: "predictions", Exclude: []string{"a"}}} },
			attrs: with(sdkAttrs, contract.AttrDesignation, "inputs"),
			body:  map[string]any{"a": int64(1)},
			want:  []wantRow{{body: map[string]any{"a": int64(1)}, names: []string{"a"}}},
		},
		{
			name:  "media: PNG, WAV and MP4 heads as bytes",
			attrs: with(sdkAttrs, contract.AttrFeatureNames, []any{"photo", "age"}),
			body:  map[string]any{"photo": png, "clip": wav, "movie": mp4, "age": int64(31)},
			want: []wantRow{{body: map[string]any{"age": int64(31)}, names: []string{"age"},
				dropped: []string{"clip", "movie", "photo"}}},
			reasons: map[string]int64{reasonBytes: 3},
		},
		{
			name:  "media: PNG, WAV and MP4 heads as base64 (standard and URL alphabets)",
			attrs: sdkAttrs,
			body: map[string]any{"a": b64(png), "b": b64(wav), "c": b64(mp4) + "AAAA",
				"d": b64(append(pngHead(), 0xfb, 0xff)), "ok": "a plain string of text"},
			want: []wantRow{{body: map[string]any{"ok": "a plain string of text"}, names: []string{"ok"},
				dropped: []string{"a", "b", "c", "d"}}},
			reasons: map[string]int64{reasonBase64Media: 4},
		},
		{
			name:  "media: data URIs, even nested or inside arrays",
			attrs: sdkAttrs,
			body: map[string]any{"u": "data:image/png;base64," + b64(png), "t": "data:,hello",
				"nested": map[string]any{"x": "DATA:text/plain;charset=utf-8,hi"}, "list": []any{"ok", "data:audio/wav;base64," + b64(wav)},
				"text": "data: not a uri"},
			want: []wantRow{{body: map[string]any{"text": "data: not a uri"}, names: []string{"text"},
				dropped: []string{"list", "nested.x", "t", "u"}}},
			reasons: map[string]int64{reasonDataURI: 4},
		},
		{
			name:  "media: column names that say image/audio/video (strings only)",
			attrs: sdkAttrs,
			body: map[string]any{"image": "cat", "user": map[string]any{"voice_b64": "zzz"}, "video_data": "x",
				"image_width": int64(640), "invoice": "INV-1", "imageCount": "3"},
			want: []wantRow{{body: map[string]any{"image_width": int64(640), "invoice": "INV-1", "imageCount": "3"},
				names: []string{"imageCount", "image_width", "invoice"}, dropped: []string{"image", "user.voice_b64", "video_data"}}},
			reasons: map[string]int64{reasonName: 3},
		},
		{
			name:  "media: a map declaring an image content type loses its payload, keeps metadata",
			attrs: sdkAttrs,
			body: map[string]any{"upload": map[string]any{"content_type": "image/jpeg", "data": "abc", "width": int64(2)},
				"doc": map[string]any{"mimeType": "application/json", "data": "{}"}},
			want: []wantRow{{body: map[string]any{"upload.content_type": "image/jpeg", "upload.width": int64(2),
				"doc.mimeType": "application/json", "doc.data": "{}"},
				names: []string{"doc.data", "doc.mimeType", "upload.content_type", "upload.width"}, dropped: []string{"upload.data"}}},
			reasons: map[string]int64{reasonContentType: 1},
		},
		{
			name:    "media: values over max_value_size",
			cfg:     func(c *Config) { c.Media.MaxValueSize = 10 },
			attrs:   sdkAttrs,
			body:    map[string]any{"long": "0123456789A", "short": "0123456789", "arr": []any{"0123456789"}},
			want:    []wantRow{{body: map[string]any{"short": "0123456789"}, names: []string{"short"}, dropped: []string{"arr", "long"}}},
			reasons: map[string]int64{reasonSize: 2},
		},
		{
			name:  "normalize: timestamps with offset to RFC 3339 UTC; others unchanged",
			attrs: sdkAttrs,
			body: map[string]any{"t1": "2024-03-01T01:30:00.5+02:00", "t2": "2024-03-01T01:30:00Z", "t3": "2024-03-01T01:30:00",
				"d": 1234567.0, "i": int64(-4), "b": false, "n": nil},
			want: []wantRow{{body: map[string]any{"t1": "2024-02-29T23:30:00.5Z", "t2": "2024-03-01T01:30:00Z", "t3": "2024-03-01T01:30:00",
				"d": 1234567.0, "i": int64(-4), "b": false, "n": nil},
				names: []string{"b", "d", "i", "n", "t1", "t2", "t3"}}},
		},
		{
			name:  "normalize: a JSON string body is parsed; integers stay integers",
			attrs: sdkAttrs,
			body:  `{"age": 31, "income": 5.5e4, "geo": {"zip": "98052"}}`,
			want: []wantRow{{body: map[string]any{"age": int64(31), "income": 55000.0, "geo.zip": "98052"},
				names: []string{"age", "geo.zip", "income"}}},
		},
		{
			name:  "normalize: a scalar body becomes the body column",
			attrs: sdkAttrs,
			body:  "churned",
			want:  []wantRow{{body: map[string]any{"body": "churned"}, names: []string{"body"}}},
		},
		{
			name: "attribute sources: prefix and explicit list, moved out of the attributes",
			cfg:  func(c *Config) { c.AttributePrefix = "feature."; c.Attributes = []string{"country"} },
			attrs: with(sdkAttrs, "feature.age", int64(31), "feature.geo", map[string]any{"zip": "98052"}, "country", "US",
				"feature.photo", []byte{1}, "other", "x"),
			body: map[string]any{"age": int64(99), "b": int64(1)},
			want: []wantRow{{body: map[string]any{"age": int64(99), "b": int64(1), "geo.zip": "98052", "country": "US"},
				names: []string{"age", "b", "country", "geo.zip"}, dropped: []string{"photo"},
				attrs: map[string]any{"other": "x"}, absent: []string{"feature.age", "feature.geo", "country", "feature.photo"}}},
			reasons: map[string]int64{reasonDuplicate: 1, reasonBytes: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			process, tel := newTestProcessor(t, cfg)
			res := tt.res
			if res == nil {
				res = map[string]any{}
			}
			got := records(process(oneRecord(t, res, tt.attrs, tt.body)))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				checkRow(t, got[i], w)
			}
			if tt.reasons == nil {
				tt.reasons = map[string]int64{}
			}
			if counts := droppedCounts(t, tel); !reflect.DeepEqual(counts, tt.reasons) {
				t.Errorf("dropped_values = %v, want %v", counts, tt.reasons)
			}
		})
	}
}

func checkRow(t *testing.T, lr plog.LogRecord, w wantRow) {
	t.Helper()
	if !contract.IsModelData(lr) {
		t.Fatal("record is not model data")
	}
	if lr.EventName() != contract.EventName {
		t.Errorf("event name %q", lr.EventName())
	}
	if got := lr.Body().Map().AsRaw(); !reflect.DeepEqual(got, w.body) {
		t.Errorf("body\n got %#v\nwant %#v", got, w.body)
	}
	if got := contract.Columns(lr); !reflect.DeepEqual(got, w.names) {
		t.Errorf("feature names %q, want %q", got, w.names)
	}
	if got := strSlice(lr.Attributes().Get(contract.AttrDroppedColumns)); !reflect.DeepEqual(got, w.dropped) {
		t.Errorf("dropped columns %q, want %q", got, w.dropped)
	}
	for k, v := range w.attrs {
		got, ok := lr.Attributes().Get(k)
		if !ok || !reflect.DeepEqual(got.AsRaw(), v) {
			t.Errorf("attribute %s = %v, want %v", k, got.AsRaw(), v)
		}
	}
	for _, k := range w.absent {
		if _, ok := lr.Attributes().Get(k); ok {
			t.Errorf("attribute %s should be gone", k)
		}
	}
	for _, n := range contract.Columns(lr) {
		if v, ok := lr.Body().Map().Get(n); ok && !isScalar(v.Type().String()) {
			t.Errorf("column %s is a %s, not a scalar", n, v.Type())
		}
	}
}

func isScalar(typ string) bool {
	switch typ {
	case "Str", "Bool", "Int", "Double", "Empty":
		return true
	}
	return false
}
