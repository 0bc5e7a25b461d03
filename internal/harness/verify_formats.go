package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// AddFile reads one file of the exporter by its extension: .csv, .jsonl
// (MDC records) or .parquet; other files are ignored.
func (v *Verifier) AddFile(name string, data []byte) {
	switch {
	case strings.HasSuffix(name, ".csv"):
		v.AddCSV(name, bytes.NewReader(data))
	case strings.HasSuffix(name, ".jsonl"):
		v.AddMDC(name, data)
	case strings.HasSuffix(name, ".parquet"):
		v.AddParquet(name, data)
	}
}

// AddMDC reads one MDC JSON Lines file: every row of every record's data
// is counted by its row id.
func (v *Verifier) AddMDC(name string, data []byte) {
	v.rep.Files++
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Data []map[string]any `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: %v", name, line, err))
			continue
		}
		for _, row := range rec.Data {
			id, _ := row[RowIDColumn].(string)
			v.countID(fmt.Sprintf("%s:%d", name, line), id)
		}
	}
}

// AddParquet reads one Parquet file (with parquet-go): every row is counted by its row id.
func (v *Verifier) AddParquet(name string, data []byte) {
	v.rep.Files++
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		v.rep.Malformed++
		sample(&v.rep.MalformedSample, fmt.Sprintf("%s: %v", name, err))
		return
	}
	col := -1
	for i, el := range f.Metadata().Schema[1:] {
		if el.Name == RowIDColumn {
			col = i
		}
	}
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 256)
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				id := ""
				for _, val := range r {
					if val.Column() == col && !val.IsNull() {
						id = string(val.ByteArray())
					}
				}
				v.countID(name, id)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				v.rep.Malformed++
				sample(&v.rep.MalformedSample, fmt.Sprintf("%s: %v", name, err))
				break
			}
		}
		_ = rows.Close()
	}
}

// countID counts a row by its row id, or as foreign or malformed.
func (v *Verifier) countID(where, id string) {
	if req, i, ok := v.rowOf(id, func() string { return where }); ok {
		v.count(req, i)
	}
}

// rowOf is the request and row a row id names. A row id of no row of this
// run counts as foreign, one that names this run but no row of it as
// malformed (sampled with where, built only then); ok is false for both.
func (v *Verifier) rowOf(id string, where func() string) (req, i int, ok bool) {
	if !strings.HasPrefix(id, v.m.Run+".") {
		v.rep.Foreign++
		return 0, 0, false
	}
	req, i, ok = v.m.ParseRowID(id)
	if !ok {
		v.rep.Malformed++
		sample(&v.rep.MalformedSample, fmt.Sprintf("%s: row id %q", where(), id))
	}
	return req, i, ok
}
