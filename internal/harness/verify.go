package harness

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Report is the verifier's count of one run's rows in storage.
type Report struct {
	Run        string `json:"run"`
	Files      int    `json:"files"`      // CSV files read (all runs)
	Expected   int64  `json:"expected"`   // rows of acknowledged requests
	Found      int64  `json:"found"`      // distinct expected rows found, intact
	Missing    int64  `json:"missing"`    // expected rows not found
	Duplicated int64  `json:"duplicated"` // extra copies of rows of this run
	Malformed  int64  `json:"malformed"`  // rows of this run with a wrong cell, width, header or file
	Unexpected int64  `json:"unexpected"` // rows of requests never acknowledged (they may land: not an error)
	Foreign    int64  `json:"foreign"`    // rows of other runs or probes, ignored
	// Samples of problems, at most a few each.
	MissingSample   []string `json:"missing_sample,omitempty"`
	MalformedSample []string `json:"malformed_sample,omitempty"`
	DuplicateSample []string `json:"duplicate_sample,omitempty"`
	// DuplicateRequests lists the requests with a duplicated row.
	DuplicateRequests []int `json:"duplicate_requests,omitempty"`
}

// OK reports zero loss, zero duplicates and zero malformed rows.
func (r *Report) OK() bool {
	return r.Missing == 0 && r.Duplicated == 0 && r.Malformed == 0 && r.Found == r.Expected
}

func (r *Report) String() string {
	return fmt.Sprintf("run %s: files %d, expected %d, found %d, missing %d, duplicated %d, malformed %d, unexpected %d, foreign %d",
		r.Run, r.Files, r.Expected, r.Found, r.Missing, r.Duplicated, r.Malformed, r.Unexpected, r.Foreign)
}

const sampleMax = 5

func sample(s *[]string, v string) {
	if len(*s) < sampleMax {
		*s = append(*s, v)
	}
}

// Verifier counts one run's rows file by file.
type Verifier struct {
	m      *Manifest
	layout layout
	header []string
	seen   map[int64]int32 // seq -> copies
	rep    Report
}

// NewVerifier starts counting the rows of m.
func NewVerifier(m *Manifest) *Verifier {
	m.Rows.Defaults()
	return &Verifier{m: m, layout: m.layout(), header: m.Header(), seen: make(map[int64]int32, m.ExpectedRows()),
		rep: Report{Run: m.Run, Expected: m.ExpectedRows()}}
}

// AddCSV reads one data.csv (name is only for messages).
func (v *Verifier) AddCSV(name string, r io.Reader) {
	v.rep.Files++
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s: header: %v", name, err))
		}
		return
	}
	headerOK := slices.Equal(header, v.header)
	idCol := slices.Index(header, RowIDColumn)
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// A torn or unparsable line: count it against this run when it names it.
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: %v", name, line, err))
			continue
		}
		id := ""
		if idCol >= 0 && idCol < len(rec) {
			id = rec[idCol]
		}
		req, i, ok := v.rowOf(id, func() string { return fmt.Sprintf("%s:%d", name, line) })
		switch {
		case !ok:
			continue
		case !headerOK:
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: row %s in a file whose header is %q", name, line, rec[idCol], header))
			continue
		}
		if problem := v.checkCells(rec, req, i); problem != "" {
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: %s", name, line, problem))
			continue
		}
		v.count(req, i)
	}
}

func (v *Verifier) count(req, i int) {
	seq := v.m.seq(req, i)
	n := v.seen[seq]
	v.seen[seq] = n + 1
	switch {
	case n > 0:
		v.rep.Duplicated++
		sample(&v.rep.DuplicateSample, v.m.RowID(req, i))
		if k, found := slices.BinarySearch(v.rep.DuplicateRequests, req); !found {
			v.rep.DuplicateRequests = slices.Insert(v.rep.DuplicateRequests, k, req)
		}
	case !v.m.Acked(req):
		v.rep.Unexpected++
	default:
		v.rep.Found++
	}
}

func (v *Verifier) checkCells(rec []string, req, i int) string {
	if len(rec) != len(v.header) {
		return fmt.Sprintf("row %s has %d cells, want %d", v.m.RowID(req, i), len(rec), len(v.header))
	}
	for c := range v.layout.names {
		if want := v.m.cell(&v.layout, req, i, c); rec[c] != want {
			return fmt.Sprintf("row %s column %s = %q, want %q", v.m.RowID(req, i), v.header[c], rec[c], want)
		}
	}
	base := v.m.Features
	if rec[base] == "" {
		return fmt.Sprintf("row %s has no %s", v.m.RowID(req, i), contract.ColCorrelationID)
	}
	if got := rec[base+7]; got != v.m.RequestID(req) {
		return fmt.Sprintf("row %s $aml_request_id = %q, want %q", v.m.RowID(req, i), got, v.m.RequestID(req))
	}
	if rec[base+5] != v.m.Model || rec[base+6] != v.m.Version {
		return fmt.Sprintf("row %s model %q version %q", v.m.RowID(req, i), rec[base+5], rec[base+6])
	}
	if _, err := contract.ParseTimestamp(rec[base+1]); err != nil {
		return fmt.Sprintf("row %s: %v", v.m.RowID(req, i), err)
	}
	return ""
}

// AddOTLPJSON reads a file of OTLP JSON lines (the upstream file exporter's
// output), counting contract records of this run like CSV rows.
func (v *Verifier) AddOTLPJSON(name string, r io.Reader) error {
	v.rep.Files++
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	var um plog.JSONUnmarshaler
	l := &v.layout
	for line := 1; sc.Scan(); line++ {
		logs, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil {
			v.rep.Malformed++
			sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: %v", name, line, err))
			continue
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					id := ""
					if lr.Body().Type() == pcommon.ValueTypeMap {
						if val, ok := lr.Body().Map().Get(RowIDColumn); ok {
							id = val.AsString()
						}
					}
					req, i, ok := v.rowOf(id, func() string { return fmt.Sprintf("%s:%d", name, line) })
					if !ok {
						continue
					}
					bad := false
					for c, name := range l.names {
						var path []string
						if l.sdk != nil {
							path = l.sdk[c].path
						}
						val, found := lookupPath(lr.Body().Map(), name, path)
						if !found || contract.FormatValue(val) != v.m.cell(l, req, i, c) {
							bad = true
							break
						}
					}
					if bad {
						v.rep.Malformed++
						sample(&v.rep.MalformedSample, fmt.Sprintf("%s:%d: row %s", name, line, id))
						continue
					}
					v.count(req, i)
				}
			}
		}
	}
	return sc.Err()
}

// Report finishes the count.
func (v *Verifier) Report() *Report {
	rep := v.rep
	rep.Missing = 0
	for req := 0; req < v.m.Requests; req++ {
		if !v.m.Acked(req) {
			continue
		}
		for i := 0; i < v.m.RowsPerRequest; i++ {
			if v.seen[v.m.seq(req, i)] == 0 {
				rep.Missing++
				sample(&rep.MissingSample, v.m.RowID(req, i))
			}
		}
	}
	return &rep
}

// VerifyDir reads every .csv, .jsonl and .parquet file below dir.
func VerifyDir(m *Manifest, dir string) (*Report, error) {
	v := NewVerifier(m)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasSuffix(path, ".csv"):
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			v.AddCSV(rel, bufio.NewReaderSize(f, 1<<20))
		case strings.HasSuffix(path, ".jsonl") || strings.HasSuffix(path, ".parquet"):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v.AddFile(rel, data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v.Report(), nil
}

// VerifyOTLPJSONFiles reads OTLP JSON lines files (the stock route's output).
func VerifyOTLPJSONFiles(m *Manifest, paths ...string) (*Report, error) {
	v := NewVerifier(m)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = v.AddOTLPJSON(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return v.Report(), nil
}

// ContainerClient is a client of one container of a storage account given by
// a connection string (e.g. Azurite's).
func ContainerClient(connectionString, containerName string) (*container.Client, error) {
	c, err := container.NewClientFromConnectionString(connectionString, containerName, nil)
	if err != nil {
		return nil, errors.New("not a valid storage connection string")
	}
	return c, nil
}

// VerifyContainer reads every .csv, .jsonl and .parquet blob of a container.
func VerifyContainer(ctx context.Context, m *Manifest, c *container.Client) (*Report, error) {
	v := NewVerifier(m)
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list blobs: %w", err)
		}
		for _, item := range page.Segment.BlobItems {
			name := *item.Name
			if !strings.HasSuffix(name, ".csv") && !strings.HasSuffix(name, ".jsonl") && !strings.HasSuffix(name, ".parquet") {
				continue
			}
			resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
			if err != nil {
				return nil, fmt.Errorf("download %s: %w", name, err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			v.AddFile(name, data)
		}
	}
	return v.Report(), nil
}
