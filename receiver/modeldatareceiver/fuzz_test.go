package modeldatareceiver

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// toRaw turns the parsed tree into what encoding/json decodes into `any`.
func toRaw(nodes []node, i int32) any {
	n := nodes[i]
	switch n.kind {
	case kindBool:
		return n.boolean()
	case kindInt:
		return float64(n.integer())
	case kindFloat:
		return n.double()
	case kindString:
		return n.s
	case kindBigInt:
		f, _ := strconv.ParseFloat(n.s, 64)
		return f
	case kindArray:
		out := []any{}
		for j := i + 1; j < n.end; j = nodes[j].end {
			out = append(out, toRaw(nodes, j))
		}
		return out
	case kindObject:
		out := map[string]any{}
		for j := i + 1; j < n.end; j = nodes[j].end {
			out[nodes[j].key] = toRaw(nodes, j)
		}
		return out
	}
	return nil
}

var jsonSeeds = []string{
	`{"model_name":"m","feature_names":["a","b"],"data":[[1,"x"],[2.5,null]]}`,
	`{"model_name":"m","data":{"a":true}}`,
	`{"model_name":"m","data":[{"a":1,"$aml_request_id":"r"},{"b":[1,{"c":2}]}],"correlation_ids":["x",null]}`,
	`{"model_name":"m","data":[1,2,3],"scoring_timestamp":"2020-08-13T15:54:16.691697"}`,
	`{"model_name":"m","data":[[1e400]]}`,
	`{"model_name":"m","model_version":99999999999999999999,"data":[[123456789012345678901234567890,-9223372036854775809]]}`,
	`[1` + strings.Repeat("0", 400) + `]`,
	`[{"a":"\ud83d\ude00\ud800\u0041\/"}]`,
	`{"a":-0.0e+1,"b":[],"c":{},"d":"\"\\\b\f\n\r\t"}`,
	` [ 1 , 2 ] `,
	`{"model_name":"m","data":[[` + strings.Repeat("[", 70) + `]]}`,
	`{"x":1,"x":2}`,
	`"\udc00\ud800\udc00"`,
	`01`, `1.`, `-`, `{"a" 1}`, `[1,]`, `nul`, "\"\x01\"",
}

// FuzzParseJSON compares the parser with encoding/json: it must refuse
// what encoding/json refuses and read the same values from the rest (it
// also refuses nesting deeper than 64 and fractions or exponents out of
// float64 range, and keeps an integer past int64 as its text, which
// encoding/json reads as the nearest double or refuses past float64).
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the handler refuses invalid UTF-8 before parsing
		}
		nodes, err := parseJSON(s, nil, math.MaxInt32)
		valid := json.Valid([]byte(s))
		if !valid {
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", s)
			}
			return
		}
		if err != nil {
			if !strings.Contains(err.Error(), "nesting deeper") && !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("refused valid JSON %q: %v", s, err)
			}
			return
		}
		var want any
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && slices.ContainsFunc(nodes, func(n node) bool { return n.kind == kindBigInt }) {
				return
			}
			t.Fatalf("encoding/json: %v", err)
		}
		if got := toRaw(nodes, 0); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", s, got, want)
		}
		if int(nodes[0].end) != len(nodes) {
			t.Fatalf("root ends at %d of %d nodes", nodes[0].end, len(nodes))
		}
		if n := jsonValueCount(s); n != len(nodes) {
			t.Fatalf("%q: counted %d values, parsed %d", s, n, len(nodes))
		}
	})
}

// FuzzDecodeCollect runs a body through the collect decoder (as JSON or
// CSV) and the v2 records decoder, then builds the log records: it must
// never panic, and every accepted request must give consistent rows.
func FuzzDecodeCollect(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s, false)
	}
	f.Add("a,b\n1,2\n", true)
	f.Add("\ufeffa,$aml_request_id\n\"x,y\",r\n", true)
	f.Add("a\n\"unterminated\n", true)
	r := &modeldataReceiver{cfg: createDefaultConfig(), now: func() time.Time { return fixedNow }}
	r.policy = newPolicy(r.cfg)
	f.Fuzz(func(t *testing.T, body string, isCSV bool) {
		if !utf8.ValidString(body) {
			return
		}
		for _, v2 := range []bool{false, true} {
			d := newDecoder(limits{maxRows: 50, maxColumns: 20, maxValues: 200})
			var err error
			switch {
			case v2:
				err = d.decodeRecords(body)
			case isCSV:
				err = d.decodeCSV(body)
			default:
				err = d.decodeJSON(body)
			}
			if err == nil {
				err = d.liftCorrelationColumns()
			}
			if err != nil {
				var re *requestError
				if !errors.As(err, &re) || re.status < 400 || re.status > 499 {
					t.Fatalf("error %v is not a client error", err)
				}
				continue
			}
			tb := &d.table
			if tb.rows > 50 || tb.width > 20 || len(tb.cells) != tb.rows*tb.width || tb.width != len(tb.columns) {
				t.Fatalf("table rows %d width %d cells %d columns %d", tb.rows, tb.width, len(tb.cells), len(tb.columns))
			}
			for _, c := range tb.cells {
				if c < -1 || int(c) >= len(tb.nodes) {
					t.Fatalf("cell %d out of %d nodes", c, len(tb.nodes))
				}
			}
			d.meta.modelName = "m"
			res, err := r.resolveCollect(&d.meta, http.Header{}, "")
			if err != nil {
				continue
			}
			ids, err := d.perRowIDs(&res)
			if err != nil {
				continue
			}
			ld := plog.NewLogs()
			n := d.appendLogs(&logsBuilder{ld: ld}, &res, ids, 1, fixedNow)
			if n != tb.rows || ld.LogRecordCount() != n {
				t.Fatalf("%d rows, %d kept, %d records", tb.rows, n, ld.LogRecordCount())
			}
			if n == 0 {
				continue
			}
			lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
			for i := 0; i < lrs.Len(); i++ {
				lr := lrs.At(i)
				names := contract.Columns(lr)
				if len(names) != len(tb.features) || lr.Body().Map().Len() != len(names) {
					t.Fatalf("row %d: %d names, %d features, body %d", i, len(names), len(tb.features), lr.Body().Map().Len())
				}
				if !contract.IsModelData(lr) {
					t.Fatalf("row %d is not model data", i)
				}
			}
		}
	})
}

// FuzzCSVReader compares the CSV reader with encoding/csv on bodies
// without "\r" (where RFC 4180 readers agree): same records, same refusals.
// With "\r", a body without quotes must read the same with its line ends
// written as "\n", "\r\n" or "\r".
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a\n\"x\ny\",\n", "a,\"b\"\"c\"\n\n1,2", "a\nx\"y\n", "a\n\"x\"y\n", "a,b\r1,2\r\n3,4\n", "\"\r\n\""} {
		f.Add(s)
	}
	readAll := func(s string) ([][]string, error) {
		r := newCSVReader(s)
		var out [][]string
		for {
			rec, _, ok, err := r.next(nil)
			if err != nil || !ok {
				return out, err
			}
			out = append(out, rec)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := readAll(s)
		if !strings.Contains(s, "\r") {
			cr := csv.NewReader(strings.NewReader(s))
			cr.FieldsPerRecord = -1
			want, wantErr := cr.ReadAll()
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%q: error %v, encoding/csv %v", s, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%q:\n got %q\nwant %q", s, got, want)
			}
			return
		}
		if strings.Contains(s, `"`) || err != nil {
			return
		}
		lf := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
		for _, end := range []string{"\n", "\r\n", "\r"} {
			other, err := readAll(strings.ReplaceAll(lf, "\n", end))
			if err != nil || !reflect.DeepEqual(other, got) {
				t.Fatalf("%q with line ends %q: %q (%v), want %q", s, end, other, err, got)
			}
		}
	})
}

// numberSeeds are numbers at the edges of the parser's exact paths.
var numberSeeds = []string{
	"0", "-0", "-0.0", "1", "-1", "123456789012345678", "1234567890123456789", "9223372036854775807",
	"-9223372036854775808", "9223372036854775808", "-9223372036854775809", "123456789012345678901234567890",
	"1" + strings.Repeat("0", 400), "0.1", "0.30000000000000004", "9007199254740993.5",
	"9007199254740992", "9007199254740993e0", "1e22", "1e23", "1.5e-22", "1e-23", "4.9e-324", "1.7976931348623157e308",
	"0.000000000000000000000000001", "123.4560000000000000000000", "1e400", "-1e-400", "12345678901234567890.5",
	"1.00000000000000000001", "3.14159", "2.5E+3", "7e-0",
}

// parseNumberLit parses s as one JSON value and returns its node.
func parseNumberLit(s string) (node, bool) {
	nodes, err := parseJSON(s, nil, 1)
	if err != nil || len(nodes) != 1 || (nodes[0].kind != kindInt && nodes[0].kind != kindFloat && nodes[0].kind != kindBigInt) {
		return node{}, false
	}
	return nodes[0], true
}

// checkNumber compares the parser with strconv on a JSON number literal:
// an integer literal that fits int64 is that int64, one that does not is
// its own text, anything else the float64 strconv.ParseFloat reads, bit for
// bit.
func checkNumber(t *testing.T, s string) {
	t.Helper()
	if s != strings.TrimSpace(s) {
		return // strconv reads no spaces around
	}
	got, ok := parseNumberLit(s)
	f, ferr := strconv.ParseFloat(s, 64)
	integral := !strings.ContainsAny(s, ".eE")
	if !ok {
		if (ferr == nil || integral && errors.Is(ferr, strconv.ErrRange)) && json.Valid([]byte(s)) {
			t.Fatalf("%q: refused, strconv reads %v", s, f)
		}
		return
	}
	if integral {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if got.kind != kindInt || got.integer() != i {
				t.Fatalf("%q: got %v %v, want int %d", s, got.kind, got.num, i)
			}
		} else if got.kind != kindBigInt || got.s != s {
			t.Fatalf("%q: got %v %q, want its text", s, got.kind, got.s)
		}
		return
	}
	if got.kind != kindFloat || math.Float64bits(got.double()) != math.Float64bits(f) {
		t.Fatalf("%q: got %v %v (%v), want double %v", s, got.kind, got.double(), got.num, f)
	}
}

// FuzzParseNumber compares the parser's numbers with strconv.
func FuzzParseNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			checkNumber(t, s)
		}
	})
}

func TestParseNumberMatchesStrconv(t *testing.T) {
	for _, s := range numberSeeds {
		checkNumber(t, s)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b []byte
		if rnd.IntN(4) == 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, rnd.Uint64N(uint64(math.Pow10(rnd.IntN(20)))), 10)
		if rnd.IntN(3) > 0 {
			b = append(b, '.')
			b = strconv.AppendUint(b, rnd.Uint64N(1e12), 10)
			b = append(b, strings.Repeat("0", rnd.IntN(4))...)
		}
		if rnd.IntN(3) == 0 {
			b = append(b, 'e')
			b = strconv.AppendInt(b, int64(rnd.IntN(60)-30), 10)
		}
		checkNumber(t, string(b))
		checkNumber(t, strconv.FormatFloat(rnd.NormFloat64()*math.Pow10(rnd.IntN(30)-15), 'g', -1, 64))
	}
}
