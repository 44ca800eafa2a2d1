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
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/redact"
)

// Web defaults.
const (
	// DefaultWebTimeout bounds a Web request when Timeout is zero.
	DefaultWebTimeout = 10 * time.Second
	// DefaultWebMaxBody is the largest answer a Web reads when MaxBody is
	// zero.
	DefaultWebMaxBody = 1 << 20
)

// Web is a metric from any HTTP endpoint that answers JSON, like Argo
// Rollouts' web metric provider: it sends one request (GET, or Method with
// Body), selects one value of the answer with JSONPath (Argo's jsonPath, such
// as "{$.data.ok}") and reports it as the metric Metric. A number is its
// value, true is 1 and false 0, a string that holds a number is that number,
// and null is no data; judge it with a rollback trigger (rollback.Below,
// rollback.Above, rollback.Threshold).
//
// Observe returns an error — the source could not measure — when the
// request fails or times out, the answer is not 2xx, larger than MaxBody or
// not JSON, the path selects nothing (naming where it stopped and the keys
// that were there) or a value that is not a number or a boolean (an object,
// an array, a word). A Web is not modified by Observe and may be shared.
type Web struct {
	// Metric names the value in the observation. Required.
	Metric string
	// URL is the endpoint, a text/template executed with the Target, with
	// the escaping and the checks of Probe.URL (see RenderURL).
	// Credentials belong in Header; errors never show the URL's query values.
	URL string
	// Method is the HTTP method; empty means GET.
	Method string
	// Header is added to the request. Its credentials are never shown.
	Header http.Header
	// Body is the request body, a text/template executed with the Target;
	// in a JSON body every value printed is escaped as the inside of a JSON
	// string, as Probe.Body.
	Body string
	// JSONPath selects the value: "{$.data.ok}", "$.data.ok",
	// "$.results[0]['error rate']" (see the forms in the package's
	// documentation of Web). Required.
	JSONPath string
	// Timeout bounds the request; 0 means DefaultWebTimeout.
	Timeout time.Duration
	// MaxBody is the largest answer read, in bytes; 0 means
	// DefaultWebMaxBody. A larger answer is an error, never cut to a value.
	MaxBody int64
	// Client sends the request; nil means http.DefaultClient.
	Client *http.Client
}

// Name returns "web" and the metric's name.
func (w *Web) Name() string { return "web " + w.Metric }

// Validate reports the first bad field, naming it and its value.
func (w *Web) Validate() error {
	switch {
	case w.Metric == "":
		return errors.New("monitor: Web.Metric is empty")
	case w.URL == "":
		return errors.New("monitor: Web.URL is empty")
	case !validMethod(w.Method):
		return fmt.Errorf("monitor: Web.Method %q is not an HTTP method", w.Method)
	case w.Timeout < 0:
		return fmt.Errorf("monitor: Web.Timeout %v is negative", w.Timeout)
	case w.MaxBody < 0:
		return fmt.Errorf("monitor: Web.MaxBody %d is negative", w.MaxBody)
	}
	if _, err := parseURLTemplate("URL", w.URL); err != nil {
		return fmt.Errorf("monitor: Web.URL %q: %w", redact.URL(w.URL), err)
	}
	if !strings.Contains(w.URL, "{{") {
		if err := checkURL(w.URL); err != nil {
			return fmt.Errorf("monitor: Web.URL %q: %w", redact.URL(w.URL), err)
		}
	}
	if _, err := parseJSONPath(w.JSONPath); err != nil {
		return fmt.Errorf("monitor: Web.JSONPath: %w", err)
	}
	return nil
}

func (w *Web) secrets() []string {
	return append(redact.HeaderSecrets(w.Header), redact.URLSecrets(w.URL)...)
}

// Observe requests the endpoint for t and reports the selected value.
func (w *Web) Observe(ctx context.Context, t Target) (Observation, error) {
	if err := w.Validate(); err != nil {
		return Observation{}, err
	}
	v, err := w.measure(ctx, t)
	if err != nil {
		return Observation{}, redact.Error(fmt.Errorf("monitor: web %s: %w", w.Metric, err), w.secrets()...)
	}
	obs := Observation{At: time.Now()}
	obs.Set(w.Metric, v)
	return obs, nil
}

func (w *Web) measure(ctx context.Context, t Target) (Metric, error) {
	u, err := RenderURL(w.URL, t)
	if err != nil {
		return Metric{}, err
	}
	body, err := render("Web", "Body", w.Body, t)
	if err != nil {
		return Metric{}, err
	}
	path, _ := parseJSONPath(w.JSONPath) // checked by Validate
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(w.Timeout, DefaultWebTimeout))
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cmp.Or(w.Method, http.MethodGet), u, rd)
	if err != nil {
		return Metric{}, unwrapURLError(err)
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return Metric{}, fmt.Errorf("%s %s: no answer within %v", req.Method, redact.URL(u), cmp.Or(w.Timeout, DefaultWebTimeout))
		}
		return Metric{}, fmt.Errorf("%s %s: %w", req.Method, redact.URL(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	limit := cmp.Or(w.MaxBody, DefaultWebMaxBody)
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Metric{}, fmt.Errorf("%s %s: reading the answer: %w", req.Method, redact.URL(u), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Metric{}, fmt.Errorf("%s %s answered %s: %s", req.Method, redact.URL(u), resp.Status, redact.Body(b, 200, w.secrets()...))
	}
	if int64(len(b)) > limit {
		return Metric{}, fmt.Errorf("%s %s: the answer is larger than %d bytes (MaxBody)", req.Method, redact.URL(u), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Metric{}, fmt.Errorf("%s %s: the answer is not JSON (%v): %s", req.Method, redact.URL(u), err, redact.Body(b, 120, w.secrets()...))
	}
	v, err := path.lookup(doc)
	if err != nil {
		return Metric{}, err
	}
	f, ok, err := number(w.JSONPath, v)
	if err != nil || !ok {
		return NoData(), err
	}
	return Value(f, 1), nil
}

// CallTimeout returns Timeout: the runner refuses a Web source whose
// Timeout is longer than its Observe bound (deploy.Timeouts).
func (w *Web) CallTimeout() time.Duration { return w.Timeout }
