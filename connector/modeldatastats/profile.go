package modeldatastats

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Profile is the reference data of one model/version/designation: the file
// format of profile_dir and of a baseline's `profile`.
type Profile struct {
	Model       string           `json:"model"`
	Version     string           `json:"version"`
	Designation string           `json:"designation"`
	Rows        uint64           `json:"rows"`
	Features    []FeatureProfile `json:"features"`
}

// FeatureProfile is one feature of a Profile.
type FeatureProfile struct {
	Name string `json:"name"`
	// Type is numeric, bool or string.
	Type string `json:"type"`
	// Values are a numeric feature's values (a uniform sample when the
	// window held more than sample_size).
	Values []float64 `json:"values,omitempty"`
	// Counts are a categorical feature's value counts.
	Counts map[string]uint64 `json:"counts,omitempty"`
}

// Feature types of a baseline (Azure ML infers them from the baseline too).
const (
	typeNumeric = "numeric"
	typeBool    = "bool"
	typeString  = "string"
)

// baseline is a Profile ready to compare windows with.
type baseline struct {
	numeric     map[string]*numericBaseline
	categorical map[string]*categoricalBaseline
	types       map[string]string
}

func newBaseline(p *Profile) (*baseline, error) {
	b := &baseline{numeric: map[string]*numericBaseline{}, categorical: map[string]*categoricalBaseline{}, types: map[string]string{}}
	for _, f := range p.Features {
		switch f.Type {
		case typeNumeric:
			if len(f.Values) == 0 {
				continue
			}
			b.numeric[f.Name] = newNumericBaseline(f.Values)
		case typeBool, typeString:
			cb := &categoricalBaseline{counts: f.Counts}
			for _, c := range f.Counts {
				cb.n += c
			}
			if cb.n == 0 {
				continue
			}
			b.categorical[f.Name] = cb
		default:
			return nil, fmt.Errorf("feature %q: unknown type %q (numeric, bool or string)", f.Name, f.Type)
		}
		b.types[f.Name] = f.Type
	}
	return b, nil
}

// readProfileFile reads a profile written by profile_dir.
func readProfileFile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// readCSVProfile reads a file in the modeldata layout: a header, the feature
// columns, then the $aml_* columns (ignored). Empty cells are nulls. A
// column whose every non-empty cell is a number is numeric, one of only
// True/False is bool, any other is string.
func readCSVProfile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	aml := map[string]bool{}
	for _, c := range contract.CorrelationColumns {
		aml[c] = true
	}
	var columns []int
	for i, name := range header {
		if !aml[name] {
			columns = append(columns, i)
		}
	}
	cells := make([][]string, len(columns))
	var rows uint64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rows++
		for j, i := range columns {
			if rec[i] != "" {
				cells[j] = append(cells[j], rec[i])
			}
		}
	}
	p := &Profile{Rows: rows}
	for j, i := range columns {
		p.Features = append(p.Features, columnProfile(header[i], cells[j]))
	}
	return p, nil
}

func columnProfile(name string, cells []string) FeatureProfile {
	values := make([]float64, 0, len(cells))
	for _, c := range cells {
		v, err := strconv.ParseFloat(c, 64)
		if err != nil {
			values = nil
			break
		}
		values = append(values, v)
	}
	if values != nil {
		return FeatureProfile{Name: name, Type: typeNumeric, Values: values}
	}
	fp := FeatureProfile{Name: name, Type: typeBool, Counts: map[string]uint64{}}
	for _, c := range cells {
		if _, ok := parseBool(c); !ok {
			fp.Type = typeString
		}
		fp.Counts[c]++
	}
	if fp.Type == typeBool { // one spelling per truth value, as the CSV writer's
		counts := map[string]uint64{}
		for c, n := range fp.Counts {
			b, _ := parseBool(c)
			counts[boolString(b)] += n
		}
		fp.Counts = counts
	}
	return fp
}

// parseBool reads the spellings of a boolean cell (Python's True/False, JSON's true/false).
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
