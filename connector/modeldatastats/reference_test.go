package modeldatastats

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// wineReference is testdata/wine/reference.json, computed by
// make_reference.py with numpy and scipy from Debian's copy of the UCI wine data.
type wineReference struct {
	TopK      int                         `json:"top_k"`
	Quantiles []float64                   `json:"quantiles"`
	Current   map[string]featureReference `json:"current"`
	Shifted   map[string]featureReference `json:"shifted"`
}

type featureReference struct {
	Type            string             `json:"type"`
	Rows            uint64             `json:"rows"`
	Nulls           uint64             `json:"nulls"`
	NumericValues   uint64             `json:"numeric_values"`
	StringValues    uint64             `json:"string_values"`
	Sum             float64            `json:"sum"`
	Min             float64            `json:"min"`
	Max             float64            `json:"max"`
	Quantiles       map[string]float64 `json:"quantiles"`
	Distinct        float64            `json:"distinct"`
	TopValues       map[string]uint64  `json:"top_values"`
	PSI             float64            `json:"psi"`
	JensenShannon   float64            `json:"jensen_shannon"`
	Wasserstein     float64            `json:"wasserstein"`
	OutOfBoundsRate float64            `json:"out_of_bounds_rate"`
	TypeErrorRate   float64            `json:"type_error_rate"`
}

func readWineReference(t *testing.T) wineReference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "wine", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref wineReference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// csvLogs turns a modeldata CSV into contract log records as the collect
// API would: numbers as doubles, other cells as strings, empty cells absent.
func csvLogs(t testing.TB, path, model string) plog.Logs {
	t.Helper()
	header, rows := testutil.ReadModelDataCSV(t, path)
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, rec := range rows {
		lr := lrs.AppendEmpty()
		body := contract.Features(lr)
		for i, name := range header {
			switch x, err := strconv.ParseFloat(rec[i], 64); {
			case rec[i] == "":
			case err == nil:
				body.PutDouble(name, x)
			default:
				body.PutStr(name, rec[i])
			}
		}
		contract.WriteRow(lr, contract.Row{ModelName: model, ModelVersion: "1", Designation: "inputs", FeatureNames: header})
	}
	return logs
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, reference %.12g (tolerance %g)", what, got, want, tol)
	}
}

// TestWineAgainstReference checks every statistic and drift figure of one
// window against the independent computation: counts exactly, quantiles
// within the exponential histogram's relative error, drift within 1e-6.
func TestWineAgainstReference(t *testing.T) {
	ref := readWineReference(t)
	for window, features := range map[string]map[string]featureReference{"current": ref.Current, "shifted": ref.Shifted} {
		t.Run(window, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.TopK = ref.TopK
			cfg.Baselines = []BaselineConfig{{Model: "wine", CSV: filepath.Join("testdata", "wine", "baseline.csv")}}
			c := newTestConnector(t, cfg)
			if err := c.ConsumeLogs(t.Context(), csvLogs(t, filepath.Join("testdata", "wine", window+".csv"), "wine")); err != nil {
				t.Fatal(err)
			}
			ms := c.models[modelKey{"wine", "1", "inputs"}]
			if len(ms.features) != len(features) {
				t.Fatalf("%d features, reference has %d", len(ms.features), len(features))
			}
			for name, want := range features {
				fs := ms.features[name]
				if fs.rows != want.Rows || fs.nulls != want.Nulls || fs.types[valueDouble] != want.NumericValues || fs.types[valueString] != want.StringValues {
					t.Errorf("%s: rows/nulls/double/string = %d/%d/%d/%d, reference %d/%d/%d/%d", name,
						fs.rows, fs.nulls, fs.types[valueDouble], fs.types[valueString], want.Rows, want.Nulls, want.NumericValues, want.StringValues)
				}
				d, ok := fs.drift()
				if !ok {
					t.Fatalf("%s: no drift figures", name)
				}
				within(t, name+" PSI", d.psi, want.PSI, 1e-6)
				within(t, name+" Jensen-Shannon", d.js, want.JensenShannon, 1e-6)
				within(t, name+" out-of-bounds rate", d.outOfRange, want.OutOfBoundsRate, 1e-12)
				within(t, name+" type error rate", d.typeErrors, want.TypeErrorRate, 1e-12)
				if want.Type == typeNumeric {
					within(t, name+" Wasserstein", d.wasserstein, want.Wasserstein, 1e-6)
					h := fs.hist
					if h.count != want.NumericValues || h.min != want.Min || h.max != want.Max {
						t.Errorf("%s: histogram count/min/max = %d/%g/%g, reference %d/%g/%g", name, h.count, h.min, h.max, want.NumericValues, want.Min, want.Max)
					}
					within(t, name+" sum", h.sum, want.Sum, 1e-9*math.Abs(want.Sum))
					relErr := math.Exp2(math.Ldexp(1, -int(h.scale))) - 1
					for _, q := range ref.Quantiles {
						exact := want.Quantiles[strconv.FormatFloat(q, 'g', -1, 64)]
						within(t, name+" quantile "+strconv.FormatFloat(q, 'g', -1, 64), h.quantile(q), exact, relErr*math.Abs(exact))
					}
					continue
				}
				if got := fs.distinctEstimate(); got != want.Distinct {
					t.Errorf("%s: distinct estimate %g, exact %g", name, got, want.Distinct)
				}
				top, other := fs.topValues(ref.TopK)
				gotTop := map[string]uint64{}
				for _, v := range top {
					gotTop[v] = fs.values[v]
				}
				if other > 0 {
					gotTop[OtherValue] = other
				}
				if len(gotTop) != len(want.TopValues) {
					t.Errorf("%s: top values %v, reference %v", name, gotTop, want.TopValues)
				}
				for v, n := range want.TopValues {
					if gotTop[v] != n {
						t.Errorf("%s: top values %v, reference %v", name, gotTop, want.TopValues)
					}
				}
			}
		})
	}
}

// TestWineShiftRaisesDrift: shifting alcohol by +1.0 raises its drift
// figures well above the unshifted window's, and leaves the others unchanged.
func TestWineShiftRaisesDrift(t *testing.T) {
	ref := readWineReference(t)
	cur, shifted := ref.Current["alcohol"], ref.Shifted["alcohol"]
	if !(shifted.PSI > 5*cur.PSI && shifted.JensenShannon > 2*cur.JensenShannon && shifted.Wasserstein > 5*cur.Wasserstein) {
		t.Fatalf("reference does not show the shift: current %+v shifted %+v", cur, shifted)
	}
	if ref.Current["proline"].PSI != ref.Shifted["proline"].PSI {
		t.Fatal("an unshifted feature's PSI changed")
	}
}
