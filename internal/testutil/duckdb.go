package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// duckdbScript runs one query in the pinned DuckDB (tools/duckdb, npm).
const duckdbScript = "tools/duckdb/query.mjs"

var (
	duckdbOnce sync.Once
	duckdbErr  error
)

// DuckDBResult is a query result: column names, DuckDB type names, and rows
// in DuckDB's JSON form (BIGINT and TIMESTAMP values as strings).
type DuckDBResult struct {
	Names []string `json:"names"`
	Types []string `json:"types"`
	Rows  [][]any  `json:"rows"`
}

// DuckDB runs sql in an in-memory DuckDB (the @duckdb/node-api npm package,
// installed by npm ci from tools/duckdb when missing) and returns its result.
func DuckDB(t testing.TB, sql string) DuckDBResult {
	t.Helper()
	root := RepoRoot(t)
	dir := filepath.Join(root, "tools", "duckdb")
	duckdbOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err == nil {
			return
		}
		out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error").CombinedOutput()
		if err != nil {
			duckdbErr = fmt.Errorf("install duckdb with npm ci: %v\n%s", err, out)
		}
	})
	if duckdbErr != nil {
		t.Fatal(duckdbErr)
	}
	cmd := exec.Command("node", filepath.Join(root, duckdbScript), sql)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("duckdb %q: %v\n%s", sql, err, stderr)
	}
	var res DuckDBResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("duckdb %q: %v in %s", sql, err, out)
	}
	return res
}
