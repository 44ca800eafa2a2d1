package monitor

import (
	"fmt"
	"net/url"
	"strings"
	"text/template"

	"github.com/deploykit/deploy/internal/tmplesc"
)

// urlEscapeFunc is appended to every action of a URL template.
const urlEscapeFunc = "_urlComponent"

// escapeComponent writes v percent-encoded as one URL component: every byte
// but letters, digits, '-', '.', '_' and '~' is escaped, so that a value
// can add no separator ('/', '?', '#', ':', '@'). "." and ".." are refused:
// as a path segment they climb the path.
func escapeComponent(v any) (string, error) {
	s := fmt.Sprint(v)
	if s == "." || s == ".." {
		return "", fmt.Errorf("value %q would be a relative path segment", s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String(), nil
}

// urlTemplate is a parsed URL template: a text/template whose printed
// values are escaped per URL component, and the scheme, host and port the
// result must keep.
type urlTemplate struct {
	text   string
	tmpl   *template.Template
	scheme string
	// host is the literal host, or "" when the host has actions.
	host string
	// port is the literal port ("" for the scheme's default).
	port string
}

// parseURLTemplate parses a URL template. The scheme and the port must be
// literal; the host may hold actions.
func parseURLTemplate(field, text string) (*urlTemplate, error) {
	tmpl, err := template.New(field).Funcs(template.FuncMap{urlEscapeFunc: escapeComponent}).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	tmplesc.Pipe(tmpl, urlEscapeFunc)
	scheme, rest, ok := strings.Cut(text, "://")
	if !ok || strings.Contains(scheme, "{{") {
		return nil, fmt.Errorf("the scheme must be written out, as in \"https://…\"")
	}
	authority := rest[:authorityEnd(rest)]
	ut := &urlTemplate{text: text, tmpl: tmpl, scheme: strings.ToLower(scheme)}
	// The port, if any, must be literal: stand every action for a name.
	probe := actions(authority, "x")
	u, err := url.Parse(ut.scheme + "://" + probe + "/")
	if err != nil {
		return nil, fmt.Errorf("the host and port %q do not parse (the port must be written out): %w", authority, unwrapURLError(err))
	}
	if u.User != nil {
		return nil, fmt.Errorf("the URL carries user information: put credentials in Header")
	}
	ut.port = u.Port()
	if !strings.Contains(authority, "{{") {
		ut.host = strings.ToLower(u.Hostname())
	}
	return ut, nil
}

// authorityEnd returns the end of the authority at the start of s: the
// first '/', '?' or '#' outside an action.
func authorityEnd(s string) int {
	for i := 0; i < len(s); i++ {
		if strings.HasPrefix(s[i:], "{{") {
			j := strings.Index(s[i:], "}}")
			if j < 0 {
				return len(s)
			}
			i += j + 1
			continue
		}
		if strings.IndexByte("/?#", s[i]) >= 0 {
			return i
		}
	}
	return len(s)
}

// actions replaces every action in s with v.
func actions(s, v string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+2:]
	}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// render executes the template with t and checks that the result kept the
// template's scheme, host and port, and that a host made from fields is a
// plain DNS name.
func (ut *urlTemplate) render(data any) (string, error) {
	var b strings.Builder
	if err := ut.tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	s := b.String()
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("the result does not parse: %w", unwrapURLError(err))
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case strings.ToLower(u.Scheme) != ut.scheme:
		return "", fmt.Errorf("the result's scheme %q is not the template's %q", u.Scheme, ut.scheme)
	case u.User != nil:
		return "", fmt.Errorf("the result carries user information")
	case u.Port() != ut.port:
		return "", fmt.Errorf("the result's port %q is not the template's %q", u.Port(), ut.port)
	case ut.host != "" && host != ut.host:
		return "", fmt.Errorf("the result's host %q is not the template's %q", host, ut.host)
	case ut.host == "" && !dnsName(host):
		return "", fmt.Errorf("the release's fields made the host %q, which is not a DNS name", host)
	}
	return s, nil
}

// dnsName reports whether h is letters, digits, '-' and '.' only, with no
// empty label.
func dnsName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// RenderURL executes a URL template, as [Probe] does with its URL, for t:
// every value printed is percent-encoded as one URL component, "." and ".."
// are refused, and the result must keep the template's scheme, port and
// literal host, or, where the host is made from fields, be a plain DNS
// name. The scheme and the port must be written out in the template.
func RenderURL(text string, t Target) (string, error) {
	ut, err := parseURLTemplate("URL", text)
	if err != nil {
		return "", err
	}
	return ut.render(t)
}
