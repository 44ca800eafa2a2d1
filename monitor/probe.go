package monitor

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/internal/retry"
	"github.com/deploykit/deploy/internal/tmplesc"
)

// Metric names reported by a [Probe] when its MetricPrefix is empty.
const (
	// ProbeLatency is the latency of the probe's last attempt, in seconds,
	// from sending the request to reading the whole (capped) body.
	ProbeLatency = "probe_latency_seconds"
	// ProbeSuccess is 1 when the probe passed and 0 when it failed.
	ProbeSuccess = "probe_success"
)

// Probe defaults.
const (
	DefaultProbeTimeout = 10 * time.Second
	DefaultProbeBackoff = 500 * time.Millisecond
	// maxProbeBody is how much of a response body a probe reads and matches.
	maxProbeBody = 1 << 20
)

// Probe is an HTTP smoke check: it sends one request to the release's
// service and checks the status, the body and the latency of the answer. It
// is the checklist's "Verify feature works in production" made executable.
//
// A Probe is a [Source]. Observe returns an observation holding one [Check]
// and two metrics, ProbeSuccess and ProbeLatency (prefixed by MetricPrefix
// when it is set). A service that answers wrongly, slowly or not at all is a
// failed check, not an error: Observe returns an error only when the probe
// could not run (bad configuration, a template that fails, ctx done).
//
// The zero values of the optional fields are safe defaults. A Probe is not
// modified by Observe and may be shared.
type Probe struct {
	// Name names the check; empty means "smoke <Method> <URL>", the URL
	// without user information and with its query values REDACTED.
	Name string
	// Method is the HTTP method; empty means GET.
	Method string
	// URL is the address to probe. It is a text/template executed with the
	// [Target], so "https://{{.Environment}}.example.com/{{.Service}}/health"
	// follows the release. Every value it prints is percent-encoded as one
	// URL component, and a result whose scheme, port or literal host differs
	// from the template's, or whose host made from fields is not a DNS name,
	// is refused (see [RenderURL]): a release field cannot send the probe,
	// and its headers, elsewhere. Credentials belong in Header, not in the
	// URL; errors and the check's name never show either.
	URL string
	// Header is added to every request. Host, if set, replaces the request's
	// Host.
	Header http.Header
	// Body is the request body, also a text/template executed with the
	// Target. In a JSON body (one that starts with { or [) every value the
	// template prints is escaped as the inside of a JSON string, so that a
	// release field cannot change the body's structure: write
	// {"version":"{{.Version}}"}.
	Body string
	// Status is the expected status code; 0 accepts any 2xx.
	Status int
	// Contains, when set, must be a substring of the response body.
	Contains string
	// Match, when set, is a regular expression (RE2 syntax) the response
	// body must match.
	Match string
	// MaxLatency, when positive, fails an attempt that takes longer.
	MaxLatency time.Duration
	// Attempts is how many times the probe is tried before it fails; 0 means 1.
	// The probe passes as soon as one attempt passes.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each
	// later one, each wait shortened by a random 0 to 20 % (jitter); 0
	// means DefaultProbeBackoff.
	Backoff time.Duration
	// Timeout bounds each attempt; 0 means DefaultProbeTimeout.
	Timeout time.Duration
	// Critical marks the check critical: its failure rolls back at once.
	Critical bool
	// MetricPrefix, when set, replaces "probe" in the metric names, so that
	// several probes can report into one observation ("checkout" gives
	// "checkout_success" and "checkout_latency_seconds").
	MetricPrefix string
	// Client sends the requests; nil means a client with Timeout.
	Client *http.Client
}

var _ Source = (*Probe)(nil)

// Validate reports the first field with a bad value, naming the field and
// the value. Observe calls it.
func (p *Probe) Validate() error {
	if strings.TrimSpace(p.URL) == "" {
		return fmt.Errorf("monitor: Probe.URL %q is empty", p.URL)
	}
	if strings.Contains(p.URL, "{{") {
		if _, err := parseURLTemplate("URL", p.URL); err != nil {
			return fmt.Errorf("monitor: Probe.URL %q: %w", redact.URL(p.URL), err)
		}
	} else if err := checkURL(p.URL); err != nil {
		return fmt.Errorf("monitor: Probe.URL %q: %w", redact.URL(p.URL), err)
	}
	if _, err := template.New("body").Parse(p.Body); err != nil {
		return fmt.Errorf("monitor: Probe.Body %q: %w", p.Body, err)
	}
	if p.Method != "" && !validMethod(p.Method) {
		return fmt.Errorf("monitor: Probe.Method %q is not a valid HTTP method", p.Method)
	}
	if p.Status != 0 && (p.Status < 100 || p.Status > 599) {
		return fmt.Errorf("monitor: Probe.Status %d is not an HTTP status code", p.Status)
	}
	if p.Match != "" {
		if _, err := regexp.Compile(p.Match); err != nil {
			return fmt.Errorf("monitor: Probe.Match %q: %w", p.Match, err)
		}
	}
	switch {
	case p.MaxLatency < 0:
		return fmt.Errorf("monitor: Probe.MaxLatency %v is negative", p.MaxLatency)
	case p.Attempts < 0:
		return fmt.Errorf("monitor: Probe.Attempts %d is negative", p.Attempts)
	case p.Backoff < 0:
		return fmt.Errorf("monitor: Probe.Backoff %v is negative", p.Backoff)
	case p.Timeout < 0:
		return fmt.Errorf("monitor: Probe.Timeout %v is negative", p.Timeout)
	}
	return nil
}

func validMethod(m string) bool {
	for _, r := range m {
		// RFC 9110 token characters.
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// render executes a text/template field of a source of type typ ("Probe",
// "Web") with t; a JSON Body escapes every value it prints as the inside of a
// JSON string.
func render(typ, field, text string, t Target) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	tmpl, err := template.New(field).Funcs(template.FuncMap{jsonEscapeFunc: escapeJSONString}).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("monitor: %s.%s %q: %w", typ, field, text, err)
	}
	if trimmed := strings.TrimSpace(text); field == "Body" && (strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")) {
		tmplesc.Pipe(tmpl, jsonEscapeFunc)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, t); err != nil {
		return "", fmt.Errorf("monitor: %s.%s %q: %w", typ, field, text, err)
	}
	return b.String(), nil
}

func (p *Probe) metricName(suffix string) string {
	prefix := p.MetricPrefix
	if prefix == "" {
		prefix = "probe"
	}
	return prefix + "_" + suffix
}

// Observe runs the probe against the release described by t.
func (p *Probe) Observe(ctx context.Context, t Target) (Observation, error) {
	if err := p.Validate(); err != nil {
		return Observation{}, err
	}
	u := p.URL
	if strings.Contains(p.URL, "{{") {
		ut, err := parseURLTemplate("URL", p.URL) // checked by Validate
		if err != nil {
			return Observation{}, fmt.Errorf("monitor: Probe.URL %q: %w", redact.URL(p.URL), err)
		}
		if u, err = ut.render(t); err != nil {
			return Observation{}, fmt.Errorf("monitor: Probe.URL %q: %w", redact.URL(p.URL), redact.Error(err, p.secrets()...))
		}
	}
	body, err := render("Probe", "Body", p.Body, t)
	if err != nil {
		return Observation{}, err
	}
	var match *regexp.Regexp
	if p.Match != "" {
		match = regexp.MustCompile(p.Match) // checked by Validate
	}
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	name := p.Name
	if name == "" {
		name = "smoke " + method + " " + redact.Text(redact.URL(u), p.secrets()...)
	}
	timeout := p.Timeout
	if timeout == 0 {
		timeout = DefaultProbeTimeout
	}
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	attempts := max(p.Attempts, 1)
	var (
		tries   int
		failure string // the last attempt's, as the check's detail
		latency = NoData()
		passed  time.Duration
	)
	_, err = retry.Do(ctx, p.backoff(), attempts, func(ctx context.Context) error {
		tries++
		d, reason, err := p.attempt(ctx, client, timeout, method, u, body, match)
		if err != nil { // ctx done: we could not measure
			return retry.Final(fmt.Errorf("monitor: probe %s: %w", name, err))
		}
		if d >= 0 {
			latency = Value(d.Seconds(), 1)
		} else {
			latency = NoData()
		}
		if reason == "" {
			passed = d
			return nil
		}
		if attempts > 1 {
			reason = fmt.Sprintf("attempt %d of %d: %s", tries, attempts, reason)
		}
		failure = reason
		return errFailed
	})
	var stopped *retry.Interrupted
	switch {
	case err == nil:
		detail := fmt.Sprintf("passed in %v", passed.Round(time.Millisecond))
		if tries > 1 {
			detail += fmt.Sprintf(" on attempt %d of %d (before: %s)", tries, attempts, failure)
		}
		return p.observation(name, true, detail, latency), nil
	case errors.As(err, &stopped):
		return Observation{}, fmt.Errorf("monitor: probe %s: %w (after %d of %d attempts: %s)", name, stopped.Cause, tries, attempts, failure)
	case err != errFailed:
		return Observation{}, err
	}
	return p.observation(name, false, failure, latency), nil
}

// errFailed is an attempt that failed the check; its reason is kept apart.
var errFailed = errors.New("probe failed")

// backoff is the wait between attempts: Backoff (DefaultProbeBackoff),
// doubled after each attempt, shortened by up to retry.DefaultJitter.
func (p *Probe) backoff() retry.Backoff {
	return retry.Backoff{Initial: cmp.Or(p.Backoff, DefaultProbeBackoff), Jitter: retry.DefaultJitter}
}

func (p *Probe) observation(name string, ok bool, detail string, latency Metric) Observation {
	o := Observation{At: time.Now(), Checks: []Check{{Name: name, OK: ok, Critical: p.Critical, Kind: KindSmoke, Detail: detail}}}
	success := 0.0
	if ok {
		success = 1
	}
	o.Set(p.metricName("success"), Value(success, 1))
	o.Set(p.metricName("latency_seconds"), latency)
	return o
}

// attempt makes one request. It returns the latency (negative when no
// response came), the reason it failed ("" when it passed), and an error only
// when ctx is done.
func (p *Probe) attempt(ctx context.Context, client *http.Client, timeout time.Duration, method, u, body string, match *regexp.Regexp) (time.Duration, string, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, rb)
	if err != nil {
		return -1, "", fmt.Errorf("request: %w", err)
	}
	for k, vs := range p.Header {
		if http.CanonicalHeaderKey(k) == "Host" && len(vs) > 0 {
			req.Host = vs[0]
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, "", context.Cause(ctx)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which the check's name shows redacted
		}
		return -1, redact.Text(err.Error(), p.secrets()...), nil
	}
	got, rerr := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	resp.Body.Close()
	d := time.Since(start)
	if rerr != nil {
		if ctx.Err() != nil {
			return -1, "", context.Cause(ctx)
		}
		return d, redact.Text(fmt.Sprintf("status %d, reading body: %v", resp.StatusCode, rerr), p.secrets()...), nil
	}
	switch {
	case p.Status != 0 && resp.StatusCode != p.Status:
		return d, fmt.Sprintf("status %d, want %d%s", resp.StatusCode, p.Status, p.snippet(got)), nil
	case p.Status == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299):
		return d, fmt.Sprintf("status %d, want 2xx%s", resp.StatusCode, p.snippet(got)), nil
	case p.Contains != "" && !bytes.Contains(got, []byte(p.Contains)):
		return d, fmt.Sprintf("body does not contain %q%s", p.Contains, p.snippet(got)), nil
	case match != nil && !match.Match(got):
		return d, fmt.Sprintf("body does not match %q%s", p.Match, p.snippet(got)), nil
	case p.MaxLatency > 0 && d > p.MaxLatency:
		return d, fmt.Sprintf("took %v, more than %v", d.Round(time.Millisecond), p.MaxLatency), nil
	}
	return d, "", nil
}

// snippet quotes the start of a body for a failure's detail, redacted.
func (p *Probe) snippet(b []byte) string {
	text := redact.Body(b, 120, p.secrets()...)
	if text == "" {
		return ""
	}
	return fmt.Sprintf(": body %q", text)
}

// secrets are the values the probe holds that no output may show: its
// credential headers and the secret parts of its URL.
func (p *Probe) secrets() []string {
	return append(redact.HeaderSecrets(p.Header), redact.URLSecrets(p.URL)...)
}

// jsonEscapeFunc is the template function that escapes what a JSON body
// template prints.
const jsonEscapeFunc = "deployJSONEscape"

// escapeJSONString returns v as the inside of a JSON string: quoted as
// encoding/json would, without the quotes.
func escapeJSONString(v any) (string, error) {
	b, err := json.Marshal(fmt.Sprint(v))
	if err != nil {
		return "", err
	}
	return string(b[1 : len(b)-1]), nil
}
