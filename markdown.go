package deploy

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/deploykit/deploy/internal/redact"
)

// mdText makes text from outside the report — a release's description or
// name, a gate's reason, an error, a log line — safe to put inline in the
// report's Markdown: URLs lose their credentials and query values, control
// characters and bidirectional overrides are removed, line breaks become
// spaces (so that no text starts a line: no injected heading, list or
// table row), and the characters that make emphasis, code, links, images,
// HTML and table cells are escaped with a backslash.
func mdText(s string) string {
	return mdEscape(redact.Text(s))
}

// mdLink is mdText for a link the release names: its query stays (a
// ticket's id), its credentials do not.
func mdLink(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return mdText(s)
	}
	u.User = nil
	return mdEscape(u.String())
}

func mdEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	prev := ' '
	rs := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	for i, r := range rs {
		switch {
		case r == '_':
			// Inside a word (error_rate) an underscore is no emphasis.
			if !(i > 0 && isWord(rs[i-1]) && i+1 < len(rs) && isWord(rs[i+1])) {
				b.WriteByte('\\')
			}
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			if prev != ' ' {
				b.WriteByte(' ')
				prev = ' '
			}
			continue
		case r == '\t':
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			continue
		case strings.ContainsRune("\\`*[]<|~", r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

// capitalize upper-cases the first letter of s, whole: "échéance" becomes
// "Échéance", not half a character.
func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
