package modeldatareceiver

import (
	"fmt"
	"strings"
)

// A text/csv reader (RFC 4180) that ends lines at "\n", "\r\n" or a lone
// "\r" (old Mac and some Excel exports), in any mix, and keeps a quoted
// cell byte for byte, line ends included; only the doubled quote "" reads
// as one ". encoding/csv turns a quoted "\r\n" into "\n" and a lone "\r"
// into cell text. Cells are substrings of the body unless they hold "".

type csvReader struct {
	src  string
	pos  int
	line int // the line the next record starts on, from 1
}

func newCSVReader(src string) *csvReader {
	return &csvReader{src: src, line: 1}
}

// lineEnd is the length of the line end at i (0: none).
func (r *csvReader) lineEnd(i int) int {
	switch {
	case i >= len(r.src):
		return 0
	case r.src[i] == '\n':
		return 1
	case r.src[i] == '\r' && i+1 < len(r.src) && r.src[i+1] == '\n':
		return 2
	case r.src[i] == '\r':
		return 1
	}
	return 0
}

// next appends the cells of the next record to rec[:0]; it returns
// ok=false after the last record. Empty lines are skipped. startLine is
// the line the record starts on.
func (r *csvReader) next(rec []string) (cells []string, startLine int, ok bool, err error) {
	for {
		n := r.lineEnd(r.pos)
		if n == 0 {
			break
		}
		r.pos += n
		r.line++
	}
	if r.pos >= len(r.src) {
		return rec[:0], r.line, false, nil
	}
	startLine = r.line
	cells = rec[:0]
	for {
		var cell string
		if r.src[r.pos] == '"' {
			if cell, err = r.quoted(); err != nil {
				return cells, startLine, false, err
			}
		} else {
			start := r.pos
			for r.pos < len(r.src) && r.src[r.pos] != ',' && r.src[r.pos] != '\n' && r.src[r.pos] != '\r' {
				if r.src[r.pos] == '"' {
					return cells, startLine, false, fmt.Errorf("line %d: a quote inside an unquoted cell (quote the whole cell and double the quote: \"a\"\"b\")", r.line)
				}
				r.pos++
			}
			cell = r.src[start:r.pos]
		}
		cells = append(cells, cell)
		if r.pos >= len(r.src) {
			return cells, startLine, true, nil
		}
		if r.src[r.pos] == ',' {
			r.pos++
			if r.pos >= len(r.src) {
				return append(cells, ""), startLine, true, nil
			}
			continue
		}
		r.pos += r.lineEnd(r.pos)
		r.line++
		return cells, startLine, true, nil
	}
}

// quoted reads a quoted cell starting at its opening quote.
func (r *csvReader) quoted() (string, error) {
	startLine := r.line
	r.pos++
	start := r.pos
	var b strings.Builder // only when the cell holds a doubled quote
	for {
		i := strings.IndexByte(r.src[r.pos:], '"')
		if i < 0 {
			return "", fmt.Errorf("line %d: a quoted cell is not closed", startLine)
		}
		r.countLines(r.src[r.pos : r.pos+i])
		r.pos += i + 1
		if r.pos < len(r.src) && r.src[r.pos] == '"' { // "" is one quote
			b.WriteString(r.src[start:r.pos])
			r.pos++
			start = r.pos
			continue
		}
		cell := r.src[start : r.pos-1]
		if b.Len() > 0 {
			b.WriteString(cell)
			cell = b.String()
		}
		if r.pos < len(r.src) && r.src[r.pos] != ',' && r.lineEnd(r.pos) == 0 {
			return "", fmt.Errorf("line %d: text after the closing quote of a cell", r.line)
		}
		return cell, nil
	}
}

// countLines advances the line count over the line ends in s.
func (r *csvReader) countLines(s string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || (s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n')) {
			r.line++
		}
	}
}
