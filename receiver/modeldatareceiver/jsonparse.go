package modeldatareceiver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON parser that keeps object member order (the column order of a
// row keyed by feature name) and parses a whole request into one flat slice
// of nodes, so a 100-row request costs a handful of allocations instead of
// one interface value per cell. Strings without escapes are substrings of
// the body, never copies.

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindInt
	kindFloat
	kindString
	kindArray
	kindObject
)

func (k nodeKind) String() string {
	return [...]string{"null", "boolean", "integer", "number", "string", "array", "object"}[k]
}

// node is one JSON value. Containers are followed by their descendants in
// document order; end is the index one past the last descendant, so the
// next sibling of node i is at nodes[i].end.
type node struct {
	kind nodeKind
	b    bool
	i    int64
	f    float64
	s    string // string value
	key  string // member name when the parent is an object
	end  int32
}

// maxJSONDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxJSONDepth = 64

type jsonParser struct {
	src   string
	pos   int
	depth int
	nodes []node
}

// parseJSON parses src (valid UTF-8, checked by the caller) into nodes,
// reusing nodes' storage. The root is nodes[0].
func parseJSON(src string, nodes []node) ([]node, error) {
	p := jsonParser{src: src, nodes: nodes[:0]}
	p.skipSpace()
	if err := p.value(""); err != nil {
		return p.nodes, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return p.nodes, p.errorf("unexpected %s after the JSON value", p.describe())
	}
	return p.nodes, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) describe() string {
	if p.pos >= len(p.src) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(key string) error {
	if p.pos >= len(p.src) {
		return p.errorf("unexpected end of input, expected a value")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.container(key, kindObject, '}')
	case c == '[':
		return p.container(key, kindArray, ']')
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.push(node{kind: kindString, s: s, key: key})
	case c == 't':
		if err := p.literal("true"); err != nil {
			return err
		}
		p.push(node{kind: kindBool, b: true, key: key})
	case c == 'f':
		if err := p.literal("false"); err != nil {
			return err
		}
		p.push(node{kind: kindBool, key: key})
	case c == 'n':
		if err := p.literal("null"); err != nil {
			return err
		}
		p.push(node{kind: kindNull, key: key})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(key)
	default:
		return p.errorf("unexpected %s, expected a value", p.describe())
	}
	return nil
}

func (p *jsonParser) push(n node) {
	n.end = int32(len(p.nodes) + 1)
	p.nodes = append(p.nodes, n)
}

func (p *jsonParser) container(key string, kind nodeKind, closing byte) error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errorf("nesting deeper than %d levels", maxJSONDepth)
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, node{kind: kind, key: key})
	p.pos++ // the opening bracket
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == closing {
		p.pos++
	} else {
		for {
			var member string
			if kind == kindObject {
				if p.pos >= len(p.src) || p.src[p.pos] != '"' {
					return p.errorf("unexpected %s, expected a member name", p.describe())
				}
				var err error
				if member, err = p.str(); err != nil {
					return err
				}
				p.skipSpace()
				if p.pos >= len(p.src) || p.src[p.pos] != ':' {
					return p.errorf("unexpected %s, expected ':'", p.describe())
				}
				p.pos++
				p.skipSpace()
			}
			if err := p.value(member); err != nil {
				return err
			}
			p.skipSpace()
			if p.pos >= len(p.src) {
				return p.errorf("unexpected end of input, expected ',' or %q", closing)
			}
			if c := p.src[p.pos]; c == ',' {
				p.pos++
				p.skipSpace()
				continue
			} else if c == closing {
				p.pos++
				break
			}
			return p.errorf("unexpected %s, expected ',' or %q", p.describe(), closing)
		}
	}
	p.nodes[idx].end = int32(len(p.nodes))
	p.depth--
	return nil
}

func (p *jsonParser) literal(word string) error {
	if !strings.HasPrefix(p.src[p.pos:], word) {
		return p.errorf("unexpected %s, expected a value", p.describe())
	}
	p.pos += len(word)
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number follows the JSON grammar. A number written without fraction or
// exponent that fits in int64 is an integer; any other number is a double.
func (p *jsonParser) number(key string) error {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '0':
		p.pos++
	case p.pos < len(p.src) && isDigit(p.src[p.pos]):
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
		}
	default:
		return p.errorf("unexpected %s in a number", p.describe())
	}
	integral := true
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		integral = false
		p.pos++
		if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
			return p.errorf("unexpected %s after the decimal point", p.describe())
		}
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		integral = false
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
			return p.errorf("unexpected %s in an exponent", p.describe())
		}
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
		}
	}
	lit := p.src[start:p.pos]
	if integral {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			p.push(node{kind: kindInt, i: i, key: key})
			return nil
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return fmt.Errorf("invalid JSON at byte %d: number %s is out of range", start, lit)
	}
	p.push(node{kind: kindFloat, f: f, key: key})
	return nil
}

var errControlInString = errors.New("control character in a string")

// str reads a string starting at the opening quote.
func (p *jsonParser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		case c == '\\':
			return p.escapedStr(start)
		case c < 0x20:
			return "", p.errorf("%v", errControlInString)
		}
		p.pos++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) escapedStr(start int) (string, error) {
	b := make([]byte, 0, p.pos-start+16)
	b = append(b, p.src[start:p.pos]...)
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("%v", errControlInString)
		case c != '\\':
			b = append(b, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(p.src) {
			return "", p.errorf("unterminated string")
		}
		e := p.src[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone surrogate becomes U+FFFD, as encoding/json does.
				r2 := rune(-1)
				if strings.HasPrefix(p.src[p.pos:], `\u`) {
					save := p.pos
					p.pos += 2
					var ok2 bool
					if r2, ok2 = p.hex4(); !ok2 {
						return "", p.errorf("invalid \\u escape")
					}
					if utf16.DecodeRune(r, r2) == utf8.RuneError {
						p.pos = save // keep the second escape for the next round
						r2 = -1
					}
				}
				if r2 < 0 {
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			p.pos--
			return "", p.errorf("invalid escape %s", p.describe())
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.src) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.src[p.pos : p.pos+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.pos += 4
	return r, true
}
