package prometheus

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// escapeFunc is the name of the function appended to every action of a
// query template.
const escapeFunc = "_promqlString"

// funcs are the functions a query template may call besides text/template's.
var funcs = template.FuncMap{
	escapeFunc: escapeString,
	"regex":    regexp.QuoteMeta,
}

// escapeString writes v as the content of a PromQL string literal: a
// backslash, a double or single quote and control characters are escaped as
// in Go, so that a release field can close no string, whichever quote the
// template uses. A backtick cannot be escaped in a PromQL raw string, so a
// value with one is refused.
func escapeString(v any) (string, error) {
	s := fmt.Sprint(v)
	if strings.IndexByte(s, '`') >= 0 {
		return "", fmt.Errorf("value %q has a backtick, which no PromQL string can hold safely", s)
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || r == '"' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == '\u2028' || r == '\u2029' || r == 0xfeff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
