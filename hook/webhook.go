package hook

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
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
)

// DefaultTimeout bounds a call whose Webhook.Timeout is zero. It is
// Flagger's: its controller sets "10s" on a webhook without a timeout
// (pkg/controller/webhook.go).
const DefaultTimeout = 10 * time.Second

// maxBody is how much of an answer is read and shown.
const maxBody = 4 << 10

// Webhook is where a hook posts Flagger's payload, as a Flagger webhook
// spec says it: name, url, timeout and metadata.
type Webhook struct {
	// Name names the webhook in reasons, checks and reports ("load test").
	// Empty means the URL's host.
	Name string
	// URL is the receiver, http or https. Required. Its credentials and
	// query values are never shown.
	URL string
	// Timeout bounds each call; 0 means DefaultTimeout. A call that takes
	// longer counts as a failed check, as in Flagger.
	Timeout time.Duration
	// Metadata is sent as the payload's metadata, unchanged.
	Metadata map[string]string
	// Header is added to every request (an Authorization token, say).
	// Flagger sends none; its values are never shown.
	Header http.Header
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Answer is what a webhook answered to one call.
type Answer struct {
	// Status is the HTTP status code; 0 when there was no answer.
	Status int
	// Body is the start of the answer's body, on one line and redacted.
	Body string
	// Err says why there was no answer: the transport failed, the call
	// timed out or panicked. It never shows the webhook's secrets.
	Err error
}

// OK reports whether the answer says yes: a status from 200 to 202, the
// range Flagger's controller accepts (it fails a call on any status above
// 202, so 204 is a failure there and here).
func (a Answer) OK() bool { return a.Err == nil && a.Status >= 200 && a.Status <= 202 }

// String says what the answer was, for people: "answered 403 Forbidden:
// closed", "did not answer: … timeout".
func (a Answer) String() string {
	if a.Err != nil {
		return "did not answer: " + a.Err.Error()
	}
	s := fmt.Sprintf("answered %d %s", a.Status, http.StatusText(a.Status))
	if a.Body != "" {
		s += ": " + a.Body
	}
	return s
}

// Label returns the webhook's name, or its URL's host.
func (w *Webhook) Label() string {
	if w.Name != "" {
		return w.Name
	}
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return "webhook"
}

// Validate reports a missing or relative URL, a scheme other than http and
// https, and a negative timeout, naming the field and its value. The error
// wraps deploy.ErrInvalid.
func (w *Webhook) Validate() error {
	var p []string
	switch u, err := url.Parse(w.URL); {
	case w.URL == "":
		p = append(p, "URL is empty")
	case err != nil:
		p = append(p, fmt.Sprintf("URL %q does not parse", redact.URL(w.URL)))
	case u.Scheme != "http" && u.Scheme != "https":
		p = append(p, fmt.Sprintf("URL %q is not an http or https URL", redact.URL(w.URL)))
	case u.Host == "":
		p = append(p, fmt.Sprintf("URL %q has no host", redact.URL(w.URL)))
	}
	if w.Timeout < 0 {
		p = append(p, fmt.Sprintf("Timeout %v is negative", w.Timeout))
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: hook %q: %s", deploy.ErrInvalid, w.Label(), strings.Join(p, "; "))
}

// secrets are what the webhook holds that no output may show.
func (w *Webhook) secrets() []string {
	return append(redact.HeaderSecrets(w.Header), redact.URLSecrets(w.URL)...)
}

// Call posts p to the webhook once and returns the answer. It is bounded
// by Timeout, also against a client that ignores its context, and never
// panics: a panic in the client becomes Answer.Err.
func (w *Webhook) Call(ctx context.Context, p Payload) Answer {
	if err := w.Validate(); err != nil {
		return Answer{Err: err}
	}
	timeout := cmp.Or(w.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan Answer, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- Answer{Err: fmt.Errorf("the call panicked: %v", v)}
			}
		}()
		done <- w.post(ctx, p)
	}()
	var a Answer
	select {
	case a = <-done:
	case <-ctx.Done():
		a = Answer{Err: fmt.Errorf("no answer within %v: %w", timeout, context.Cause(ctx))}
		if ctx.Err() == context.DeadlineExceeded {
			a.Err = fmt.Errorf("no answer within the timeout %v", timeout)
		}
	}
	if a.Err != nil {
		a.Err = redact.Error(a.Err, w.secrets()...)
	}
	return a
}

func (w *Webhook) post(ctx context.Context, p Payload) Answer {
	body, err := json.Marshal(p)
	if err != nil {
		return Answer{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Answer{Err: err}
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named below, redacted
		}
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within the timeout %v", cmp.Or(w.Timeout, DefaultTimeout))
		}
		return Answer{Err: fmt.Errorf("POST %s: %w", redact.URL(w.URL), err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	return Answer{Status: resp.StatusCode, Body: redact.Body(b, 200, w.secrets()...)}
}

// CallTimeout returns Timeout: NewRunner refuses a hook whose Timeout is
// longer than the runner's bound for its kind of call (deploy.Timeouts:
// Observe for PreRollout, Rollout and Rollback; Check for Confirm; Notify
// for PostRollout and Event), which would cut its calls short.
func (w *Webhook) CallTimeout() time.Duration { return w.Timeout }
