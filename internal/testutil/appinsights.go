package testutil

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
)

// TrackLines reads a request to an Application Insights track endpoint:
// the body, gunzipped when its Content-Encoding says gzip, split into its
// newline-delimited envelopes (one JSON document per line).
func TrackLines(r *http.Request) ([][]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return lines, sc.Err()
}
