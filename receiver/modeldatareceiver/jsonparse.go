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
	// kindBigInt is an integer literal past int64: its text, in s, is the
	// value, kept digit for digit instead of rounded to a double.
	kindBigInt
)

func (k nodeKind) String() string {
	return [...]string{"null", "boolean", "integer", "number", "string", "array", "object", "integer"}[k]
}

// node is one JSON value. Containers are followed by their descendants in
// document order; end is the index one past the last descendant, so the
// next sibling of node i is at nodes[i].end.
type node struct {
	kind nodeKind
	end  int32
	num  uint64 // a boolean (0 or 1), an int64 or a float64's bits
	s    string // string value; a kindBigInt's digits
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
	return tooLarge(limitValues, "the body holds %d values, over max_values_per_request (%d): split the request", count, maxValues)
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
// exponent is an integer: an int64 when it fits, else its text (kindBigInt);
// any other number is a double.
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
	d, err := p.integerDigits()
	if err != nil {
		return err
	}
	integral := true
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		integral = false
		if err := p.fractionDigits(&d); err != nil {
			return err
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		integral = false
		if err := p.exponent(&d); err != nil {
			return err
		}
	}
	switch {
	case integral && d.exact && d.digits <= 18:
		i := int64(d.mant)
		if neg {
			i = -i
		}
		return p.push(intNode(i), key)
	case !integral && d.exact && d.mant <= 1<<53 && d.exp10 >= -22 && d.exp10 <= 22:
		return p.push(floatNode(d.exactFloat(neg)), key)
	}
	return p.numberByStrconv(start, integral, key)
}

// decimal is a number's digits as read: mant × 10^exp10, where mant holds
// the first 19 significant digits and exact tells that it holds them all.
type decimal struct {
	mant   uint64
	digits int // significant digits in mant
	exact  bool
	exp10  int
}

// integerDigits reads a number's integer part: 0, or digits not starting
// with 0.
func (p *jsonParser) integerDigits() (decimal, error) {
	d := decimal{exact: true}
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '0':
		p.pos++
	case p.pos < len(p.src) && isDigit(p.src[p.pos]):
		for ; p.pos < len(p.src) && isDigit(p.src[p.pos]); p.pos++ {
			if d.digits == 19 {
				d.exact = false
				continue
			}
			d.mant = d.mant*10 + uint64(p.src[p.pos]-'0')
			d.digits++ // the first digit is not 0
		}
	default:
		return d, p.errorf("unexpected %s in a number", p.describe())
	}
	return d, nil
}

// fractionDigits reads the decimal point and the digits after it into d.
func (p *jsonParser) fractionDigits(d *decimal) error {
	p.pos++ // the decimal point
	if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
		return p.errorf("unexpected %s after the decimal point", p.describe())
	}
	for ; p.pos < len(p.src) && isDigit(p.src[p.pos]); p.pos++ {
		c := p.src[p.pos]
		if d.digits == 19 {
			// A dropped trailing 0 changes nothing; another digit would.
			d.exact = d.exact && c == '0'
			continue
		}
		d.mant = d.mant*10 + uint64(c-'0')
		if d.mant != 0 {
			d.digits++
		}
		d.exp10--
	}
	return nil
}

// exponent reads an exponent (e or E, an optional sign, digits) into d.
// Its value is capped at 10000: any larger one is out of float64's range
// all the same, and strconv decides.
func (p *jsonParser) exponent(d *decimal) error {
	p.pos++ // e or E
	neg := false
	if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
		neg = p.src[p.pos] == '-'
		p.pos++
	}
	if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
		return p.errorf("unexpected %s in an exponent", p.describe())
	}
	e := 0
	for ; p.pos < len(p.src) && isDigit(p.src[p.pos]); p.pos++ {
		if e < 10000 {
			e = e*10 + int(p.src[p.pos]-'0')
		}
	}
	if neg {
		e = -e
	}
	d.exp10 += e
	return nil
}

// exactFloat is d as a float64 when mant and 10^|exp10| are exact in
// float64: then one IEEE multiplication or division rounds correctly.
func (d *decimal) exactFloat(neg bool) float64 {
	f := float64(d.mant)
	if d.exp10 < 0 {
		f /= exactPow10[-d.exp10]
	} else {
		f *= exactPow10[d.exp10]
	}
	if neg {
		f = -f
	}
	return f
}

// numberByStrconv parses the number from start with strconv: the integers
// of 19 digits and more, and the doubles not exact in float64.
func (p *jsonParser) numberByStrconv(start int, integral bool, key string) error {
	lit := p.src[start:p.pos]
	if integral {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return p.push(intNode(i), key)
		}
		return p.push(node{kind: kindBigInt, s: lit}, key)
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
