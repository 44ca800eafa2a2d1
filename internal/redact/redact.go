// Package redact is the project's one rule for text that leaves an
// integration: names, errors, events, span attributes, log lines, the state
// record and the report.
//
//   - A URL loses its user information and the values of its query, and its
//     fragment: "https://bob:pw@ci.example/x?token=abc#f" becomes
//     "https://ci.example/x?token=REDACTED".
//   - A known secret (a token, a webhook URL, an HMAC key, the value of an
//     Authorization header) is never formatted: every occurrence, raw or
//     URL-escaped, becomes REDACTED.
//   - An upstream body is cut to a bound, at a rune boundary, put on one
//     line without control characters, and redacted as above.
//
// Integrations redact where they build a message, with the secrets they
// hold, and wrap what they return with [Error] as a last filter.
package redact

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces what is removed.
const Mask = "REDACTED"

// minSecret is the shortest secret that is masked: shorter ones would mask
// ordinary words and numbers and protect nothing.
const minSecret = 4

// urlPattern finds URLs with a scheme in free text.
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)

// URL returns raw without user information, query values and fragment. The
// query keys stay, so that "?token=" still says what was sent. Text that
// does not parse as a URL loses everything between "://" and "@" and
// everything after "?" or "#".
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return roughURL(raw)
	}
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return raw // nothing to remove: keep the text as written
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery = maskQuery(u.RawQuery)
	}
	return u.String()
}

// maskQuery keeps the keys of a query and masks the values, in order.
func maskQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if ok {
			parts[i] = k + "=" + Mask
		} else if p != "" {
			parts[i] = Mask
		}
	}
	return strings.Join(parts, "&")
}

func roughURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?" + Mask
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			raw = raw[:i+3] + rest[at+1:]
		}
	}
	return raw
}

// Text returns s with every URL in it redacted (see [URL]) and every
// occurrence of a secret masked. Empty secrets and secrets shorter than four
// bytes are ignored.
func Text(s string, secrets ...string) string {
	s = maskSecrets(s, secrets)
	if strings.Contains(s, "://") {
		s = urlPattern.ReplaceAllStringFunc(s, func(u string) string {
			// A URL ends before closing punctuation of the prose around it.
			trail := ""
			for len(u) > 0 && strings.ContainsRune(").,;:]}", rune(u[len(u)-1])) {
				trail = u[len(u)-1:] + trail
				u = u[:len(u)-1]
			}
			return URL(u) + trail
		})
		// What is left of "://user@" without a scheme the pattern reads
		// (a control character or a quote before it) loses its user part
		// all the same: once quoted, it would look like a URL.
		s = bareUserinfo.ReplaceAllString(s, "://")
	}
	return s
}

// bareUserinfo is a user part after "://" that no URL took.
var bareUserinfo = regexp.MustCompile(`://[^/?#\s"'<>@` + "`" + `]+@`)

func maskSecrets(s string, secrets []string) string {
	for _, sec := range expand(secrets) {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// expand returns the secrets to mask, with their URL-escaped and quoted
// forms, longest first so that a secret inside another is masked after it.
func expand(secrets []string) []string {
	var out []string
	for _, sec := range secrets {
		if len(sec) < minSecret {
			continue
		}
		out = append(out, sec)
		for _, f := range []string{url.QueryEscape(sec), url.PathEscape(sec), strings.Trim(quote(sec), `"`)} {
			if f != sec {
				out = append(out, f)
			}
		}
		if u, err := url.Parse(sec); err == nil && u.Host != "" {
			// A secret URL shown redacted still names its path, which
			// carries the secret of a Slack or Discord webhook.
			if u.Path != "" && u.Path != "/" {
				out = append(out, URL(sec), u.Host+u.Path, u.Path)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
			return `"` + s + `"` // rare: leave the raw form to the caller
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Body returns an upstream body (an error answer, a log line) fit to show:
// valid UTF-8 on one line, control characters removed, white space
// collapsed, cut to at most n bytes with "…", and redacted with [Text].
func Body(b []byte, n int, secrets ...string) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	// Redact before cutting, so that a cut cannot split a secret and leave
	// its start; then again after, for a URL the cut shortened.
	return Text(Clip(Text(s, secrets...), n), secrets...)
}

// Clip cuts s to at most n bytes at a rune boundary, ending it with "…"
// when it cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := max(n-len(ell), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// Error returns err with its message redacted with [Text], or nil for nil.
// errors.Is and errors.As see through it to err.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := Text(msg, secrets...)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// sensitive are header names whose values are secrets.
var sensitive = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "token", "secret", "key", "password", "signature", "auth", "session"}

// HeaderSecrets returns the values of the headers in h that carry
// credentials: Authorization, Cookie, and any header whose name mentions a
// token, key, secret, password, signature or session. For a value with a
// scheme ("Bearer abc") the credential after the scheme is returned too.
func HeaderSecrets(h http.Header) []string {
	var out []string
	for k, vs := range h {
		lk := strings.ToLower(k)
		hit := false
		for _, s := range sensitive {
			if strings.Contains(lk, s) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		for _, v := range vs {
			out = append(out, v)
			if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
				out = append(out, strings.TrimSpace(cred))
			}
		}
	}
	return out
}

// URLSecrets returns the secret parts of raw: its password, its user name,
// and its query values, so that [Text] masks them wherever they appear, in
// a URL or not.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return out
}
