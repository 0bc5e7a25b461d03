package modeldatareceiver

import (
	"errors"
	"fmt"
	"math"
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
	end  int32
	num  uint64 // a boolean (0 or 1), an int64 or a float64's bits
	s    string // string value
	key  string // member name when the parent is an object
}

func (n *node) boolean() bool   { return n.num != 0 }
func (n *node) integer() int64  { return int64(n.num) }
func (n *node) double() float64 { return math.Float64frombits(n.num) }
func intNode(i int64) node      { return node{kind: kindInt, num: uint64(i)} }
func floatNode(f float64) node  { return node{kind: kindFloat, num: math.Float64bits(f)} }

// maxJSONDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxJSONDepth = 64

type jsonParser struct {
	src       string
	pos       int
	depth     int
	nodes     []node
	maxValues int
}

// parseJSON parses src (valid UTF-8, checked by the caller) into nodes,
// reusing nodes' storage. The root is nodes[0]. A text of more than
// maxValues values is refused (413) before any node is made: memory stays
// proportional to the values the receiver accepts, not to the body.
func parseJSON(src string, nodes []node, maxValues int) ([]node, error) {
	count := jsonValueCount(src)
	if count > maxValues {
		return nodes[:0], tooManyValues(count, maxValues)
	}
	if cap(nodes) < count {
		nodes = make([]node, 0, count)
	}
	p := jsonParser{src: src, nodes: nodes[:0], maxValues: maxValues}
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

func tooManyValues(count, maxValues int) error {
	return tooLarge("the body holds %d values, over max_values_per_request (%d): split the request", count, maxValues)
}

// jsonValueCount is the number of nodes parseJSON makes of a valid JSON
// text, from one pass over its punctuation: the root, one more per ',' and
// one per non-empty array or object. For an invalid text it is an estimate.
func jsonValueCount(src string) int {
	n := 1
	opened := false // the last token opened an array or object
	for i := 0; i < len(src); i++ {
		switch countClass[src[i]] {
		case countQuote:
			i = stringEnd(src, i+1)
			opened = false
		case countOpen:
			n++
			opened = true
		case countClose:
			if opened {
				n--
			}
			opened = false
		case countComma:
			n++
			opened = false
		case countSpace:
		default:
			opened = false
		}
	}
	return n
}

const (
	countOther = iota
	countQuote
	countOpen
	countClose
	countComma
	countSpace
)

var countClass = [256]uint8{
	'"': countQuote, '[': countOpen, '{': countOpen, ']': countClose, '}': countClose, ',': countComma,
	' ': countSpace, '\t': countSpace, '\n': countSpace, '\r': countSpace,
}

// stringEnd is the index of the quote that closes a string whose text
// starts at i (len(src) when there is none): the first quote after i not
// escaped by an odd number of backslashes.
func stringEnd(src string, i int) int {
	for {
		q := strings.IndexByte(src[i:], '"')
		if q < 0 {
			return len(src)
		}
		q += i
		backslashes := 0
		for j := q - 1; j >= i && src[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// add appends n, refusing more values than the budget: jsonValueCount
// can undercount an invalid text.
func (p *jsonParser) add(n node) error {
	if len(p.nodes) >= p.maxValues {
		return tooManyValues(len(p.nodes)+1, p.maxValues)
	}
	p.nodes = append(p.nodes, n)
	return nil
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
		return p.push(node{kind: kindString, s: s}, key)
	case c == 't':
		if err := p.literal("true"); err != nil {
			return err
		}
		return p.push(node{kind: kindBool, num: 1}, key)
	case c == 'f':
		if err := p.literal("false"); err != nil {
			return err
		}
		return p.push(node{kind: kindBool}, key)
	case c == 'n':
		if err := p.literal("null"); err != nil {
			return err
		}
		return p.push(node{kind: kindNull}, key)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(key)
	default:
		return p.errorf("unexpected %s, expected a value", p.describe())
	}
}

func (p *jsonParser) push(n node, key string) error {
	n.key = key
	n.end = int32(len(p.nodes) + 1)
	return p.add(n)
}

func (p *jsonParser) container(key string, kind nodeKind, closing byte) error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errorf("nesting deeper than %d levels", maxJSONDepth)
	}
	idx := len(p.nodes)
	if err := p.add(node{kind: kind, key: key}); err != nil {
		return err
	}
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
// The digits are read into a mantissa while scanning: an integer of up to
// 18 digits, and a double whose mantissa and power of ten are exact in
// float64, need no second pass (one IEEE multiplication or division rounds
// correctly, as strconv's own exact path); anything else goes to strconv.
func (p *jsonParser) number(key string) error {
	start := p.pos
	neg := p.src[p.pos] == '-'
	if neg {
		p.pos++
	}
	var mant uint64
	digits := 0   // significant digits in mant
	exact := true // mant holds every significant digit
	exp10 := 0
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '0':
		p.pos++
	case p.pos < len(p.src) && isDigit(p.src[p.pos]):
		for ; p.pos < len(p.src) && isDigit(p.src[p.pos]); p.pos++ {
			if digits == 19 {
				exact = false
				continue
			}
			mant = mant*10 + uint64(p.src[p.pos]-'0')
			digits++ // the first digit is not 0
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
		for ; p.pos < len(p.src) && isDigit(p.src[p.pos]); p.pos++ {
			d := p.src[p.pos]
			if digits == 19 {
				// A dropped trailing 0 changes nothing; another digit would.
				exact = exact && d == '0'
				continue
			}
			mant = mant*10 + uint64(d-'0')
			if mant != 0 {
				digits++
			}
			exp10--
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		integral = false
		p.pos++
		expNeg := false
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			expNeg = p.src[p.pos] == '-'
			p.pos++
		}
		if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
			return p.errorf("unexpected %s in an exponent", p.describe())
		}
		e := 0
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			if e < 10000 {
				e = e*10 + int(p.src[p.pos]-'0')
			}
			p.pos++
		}
		if expNeg {
			e = -e
		}
		exp10 += e
	}
	if integral && exact && digits <= 18 {
		i := int64(mant)
		if neg {
			i = -i
		}
		return p.push(intNode(i), key)
	}
	if !integral && exact && mant <= 1<<53 && exp10 >= -22 && exp10 <= 22 {
		f := float64(mant)
		if exp10 < 0 {
			f /= exactPow10[-exp10]
		} else {
			f *= exactPow10[exp10]
		}
		if neg {
			f = -f
		}
		return p.push(floatNode(f), key)
	}
	lit := p.src[start:p.pos]
	if integral {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return p.push(intNode(i), key)
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return fmt.Errorf("invalid JSON at byte %d: number %s is out of range", start, lit)
	}
	return p.push(floatNode(f), key)
}

// exactPow10 are the powers of ten that float64 holds exactly.
var exactPow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
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
