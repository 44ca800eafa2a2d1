package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/deploykit/deploy/internal/redact"
)

// jsonPath is a parsed JSONPath-like path: keys and array indexes from the
// root.
type jsonPath struct {
	text  string
	steps []pathStep
}

type pathStep struct {
	key   string
	index int // when key is "" and isIndex
	isIdx bool
}

func (s pathStep) String() string {
	if s.isIdx {
		return "[" + strconv.Itoa(s.index) + "]"
	}
	return "." + s.key
}

// parseJSONPath reads the path forms Argo Rollouts' web provider and
// kubectl take: "{$.data.ok}", "$.data.ok", "$.items[0]['error rate']",
// "$" for the whole document; the braces and the "$" may be left out
// ("data.ok"). Keys are written after a dot (letters, digits, _ and -) or
// quoted in brackets; indexes in brackets count from 0. Filters, wildcards,
// slices and recursive descent are not supported: the path must select
// one value.
func parseJSONPath(text string) (jsonPath, error) {
	p := jsonPath{text: text}
	s := strings.TrimSpace(text)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return p, fmt.Errorf("path %q opens { without closing it", text)
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return p, fmt.Errorf("path %q is empty", text)
	}
	switch {
	case strings.HasPrefix(s, "$"):
		s = s[1:]
	case !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "["):
		s = "." + s
	}
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			n := 0
			for n < len(s) && (s[n] == '_' || s[n] == '-' || s[n] >= '0' && s[n] <= '9' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 0x80) {
				n++
			}
			if n == 0 {
				return p, fmt.Errorf("path %q: a key is missing after a dot", text)
			}
			p.steps = append(p.steps, pathStep{key: s[:n]})
			s = s[n:]
		case '[':
			if len(s) > 1 && (s[1] == '\'' || s[1] == '"') {
				// A quoted key, which may hold "]": it ends at the quote
				// followed by "]".
				close := strings.Index(s[2:], string(s[1])+"]")
				if close < 0 {
					return p, fmt.Errorf("path %q: unterminated quoted key", text)
				}
				p.steps = append(p.steps, pathStep{key: s[2 : 2+close]})
				s = s[2+close+2:]
				continue
			}
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return p, fmt.Errorf("path %q: [ without ]", text)
			}
			in := strings.TrimSpace(s[1:end])
			i, err := strconv.Atoi(in)
			if err != nil || i < 0 {
				return p, fmt.Errorf("path %q: [%s] is not an index from 0 or a quoted key (filters, wildcards and slices are not supported)", text, in)
			}
			p.steps = append(p.steps, pathStep{index: i, isIdx: true})
			s = s[end+1:]
		default:
			return p, fmt.Errorf("path %q: unexpected %q", text, s)
		}
	}
	return p, nil
}

// lookup returns the value the path selects in doc, decoded with
// json.Decoder.UseNumber. Its errors say where the path stopped and what was
// there.
func (p jsonPath) lookup(doc any) (any, error) {
	v := doc
	at := "$"
	for _, st := range p.steps {
		switch x := v.(type) {
		case map[string]any:
			if st.isIdx {
				return nil, fmt.Errorf("path %s: %s is an object, not an array: cannot take %s", p.text, at, st)
			}
			next, ok := x[st.key]
			if !ok {
				return nil, fmt.Errorf("path %s: key %q not found in %s (keys: %s)", p.text, st.key, at, keysOf(x))
			}
			v = next
		case []any:
			if !st.isIdx {
				return nil, fmt.Errorf("path %s: %s is an array, not an object: cannot take key %q", p.text, at, st.key)
			}
			if st.index >= len(x) {
				return nil, fmt.Errorf("path %s: index %d out of range at %s (length %d)", p.text, st.index, at, len(x))
			}
			v = x[st.index]
		default:
			return nil, fmt.Errorf("path %s: %s is %s, not an object or an array: cannot take %s", p.text, at, kindOf(v), st)
		}
		at += st.String()
	}
	return v, nil
}

// number turns a selected value into a metric value: a number as it is,
// true as 1 and false as 0, a string that holds a number; null is no data
// (ok false).
func number(path string, v any) (f float64, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return math.NaN(), false, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, false, fmt.Errorf("path %s: %s is out of range", path, x)
		}
		return f, true, nil
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false, fmt.Errorf("path %s: the value is the string %q, not a number or a boolean", path, redact.Clip(x, 40))
		}
		return f, true, nil
	}
	return 0, false, fmt.Errorf("path %s: the value is %s, not a number or a boolean", path, kindOf(v))
}

func keysOf(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, strconv.Quote(k))
	}
	sort.Strings(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "…")
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
