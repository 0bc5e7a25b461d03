package testutil

import (
	"encoding/csv"
	"os"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// ReadModelDataCSV reads a CSV file in the modeldata layout (a header, the
// feature columns, then the $aml_* correlation columns): the feature names
// and each row's feature cells, as text.
func ReadModelDataCSV(t testing.TB, path string) (names []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n := len(recs[0]) - len(contract.CorrelationColumns)
	for _, rec := range recs[1:] {
		rows = append(rows, rec[:n])
	}
	return recs[0][:n], rows
}
