package gate

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
	"slices"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/internal/retry"
)

// Defaults of [HTTP] and [CI].
const (
	// DefaultTimeout bounds each request when the gate's Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultAttempts is how many times HTTP tries when Attempts is zero.
	DefaultAttempts = 3
	// DefaultBackoff is the first wait between attempts when Backoff is zero;
	// it doubles after each attempt (less up to 20 % jitter).
	DefaultBackoff = time.Second
	// maxBody is how much of a response body is read and shown as a reason.
	maxBody = 4 << 10
)

// Payload is the JSON body HTTP posts: name, namespace (here the
// environment), phase and metadata, as Flagger's webhooks name them, plus the
// rest of the release. It is not Flagger's payload, which has a checksum and
// nothing else: package hook posts that one.
type Payload struct {
	// Name is the release's service.
	Name string `json:"name"`
	// Namespace is the release's environment.
	Namespace string `json:"namespace"`
	// Phase is "preflight" for a gate.
	Phase string `json:"phase"`
	// Metadata is HTTP.Metadata.
	Metadata map[string]string `json:"metadata,omitempty"`

	ID              string            `json:"id"`
	Version         string            `json:"version"`
	PreviousVersion string            `json:"previousVersion,omitempty"`
	Commit          string            `json:"commit,omitempty"`
	Stage           string            `json:"stage,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
}

// HTTP is a generic pre-deployment HTTP check: it POSTs a JSON [Payload]
// describing the release to URL before anything is deployed; a 2xx answer
// passes, any other blocks with the response body as the reason.
// Transport errors, timeouts, 429 and 5xx answers are tried again, up to
// Attempts in all, waiting Backoff, then twice as long, and so on, between
// attempts, each wait shortened by a random 0 to 20 % (jitter) or, when the
// answer has a Retry-After, as long as it asks, up to 5 minutes; other
// answers are final.
//
// Point it at whatever knows: a CI status endpoint (Items:
// deploy.ItemTestsPassing), a migration dry-run service
// (deploy.ItemMigrationsTested), an on-call tool (deploy.ItemOnCallNotified).
//
// It is not Flagger's pre-rollout webhook, which runs against the deployed
// canary and is retried every interval up to the analysis threshold: use
// hook.PreRollout for that, and package hook for Flagger's other webhooks and
// its payload.
type HTTP struct {
	// Label names the gate in reports; empty means "http" and the URL's
	// host and path.
	Label string
	// URL is the endpoint, http or https. Required.
	URL string
	// Header is added to every request (an Authorization token, say).
	Header http.Header
	// Metadata is sent as the payload's metadata.
	Metadata map[string]string
	// Items are the checklist items ticked when the check passes.
	Items []deploy.Item
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Attempts is how many times to try; 0 means DefaultAttempts.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after each
	// one, less jitter; 0 means DefaultBackoff.
	Backoff time.Duration
}

var (
	_ deploy.Gate        = (*HTTP)(nil)
	_ deploy.Checklister = (*HTTP)(nil)
)

// Name returns Label, or "http" followed by the URL's host: not its path
// or query, which may carry a secret.
func (h *HTTP) Name() string {
	if h.Label != "" {
		return h.Label
	}
	if u, err := url.Parse(h.URL); err == nil && u.Host != "" {
		return "http " + u.Host
	}
	return "http"
}

// ChecklistItems returns Items.
func (h *HTTP) ChecklistItems() []deploy.Item { return slices.Clone(h.Items) }

// Validate reports a missing or relative URL, a scheme other than http and
// https, negative durations and attempts, and empty items.
func (h *HTTP) Validate() error {
	var p problems
	checkURL(&p, "URL", h.URL, true)
	if h.Timeout < 0 {
		p.add("Timeout %v is negative", h.Timeout)
	}
	if h.Attempts < 0 {
		p.add("Attempts %d is negative", h.Attempts)
	}
	if h.Backoff < 0 {
		p.add("Backoff %v is negative", h.Backoff)
	}
	for i, it := range h.Items {
		if it == "" {
			p.add("Items[%d] is empty", i)
		}
	}
	return p.err("HTTP")
}

func checkURL(p *problems, field, raw string, required bool) {
	if raw == "" {
		if required {
			p.add("%s is empty", field)
		}
		return
	}
	u, err := url.Parse(raw)
	shown := redact.URL(raw) // the URL may hold a secret
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.add("%s %q does not parse: %v", field, shown, err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.add("%s %q is not an http or https URL", field, shown)
	case u.Host == "":
		p.add("%s %q has no host", field, shown)
	}
}

// Check posts the payload and passes on a 2xx answer. Otherwise it returns
// an error with the status and the body, after the last attempt.
func (h *HTTP) Check(ctx context.Context, d *deploy.Deployment) error {
	return redact.Error(h.check(ctx, d), h.secrets()...)
}

// secrets are what the gate holds that no output may show.
func (h *HTTP) secrets() []string {
	return append(redact.HeaderSecrets(h.Header), redact.URLSecrets(h.URL)...)
}

func (h *HTTP) check(ctx context.Context, d *deploy.Deployment) error {
	if err := h.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(Payload{
		Name: d.Release.Service, Namespace: d.Release.Environment, Phase: string(deploy.PhasePreflight),
		Metadata: h.Metadata, ID: d.ID, Version: d.Release.Version, PreviousVersion: d.Release.PreviousVersion,
		Commit: d.Release.Commit, Stage: d.Stage.Name, Labels: d.Release.Labels,
	})
	if err != nil {
		return err
	}
	var answer string
	n, err := retry.Do(ctx, h.backoff(), cmp.Or(h.Attempts, DefaultAttempts), func(ctx context.Context) error {
		a, again, err := h.try(ctx, body)
		answer = a
		if !again {
			return retry.Final(err)
		}
		return err
	})
	var stopped *retry.Interrupted
	switch {
	case err == nil:
		deploy.Evidence(ctx, "POST %s answered %s", redact.URL(h.URL), answer)
		return nil
	case errors.As(err, &stopped):
		return fmt.Errorf("%w (gave up after %d attempts: %w)", stopped.Err, n, stopped.Cause)
	case n > 1:
		return fmt.Errorf("%w (after %d attempts)", err, n)
	default:
		return err
	}
}

// backoff is the wait between attempts: Backoff, doubled after each
// attempt, shortened by up to retry.DefaultJitter, or as long as a 429 or
// 503 asks with Retry-After, up to maxAsked.
func (h *HTTP) backoff() retry.Backoff {
	return retry.Backoff{Initial: cmp.Or(h.Backoff, DefaultBackoff), MaxAsked: maxAsked, Jitter: retry.DefaultJitter}
}

// maxAsked caps how long a Retry-After holds the HTTP gate between attempts.
const maxAsked = 5 * time.Minute

// try posts body once; again says whether another attempt may help. On a
// 2xx answer it returns the status and the start of the body ("200 OK:
// checkout v2 ready").
func (h *HTTP) try(ctx context.Context, body []byte) (answer string, again bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(h.Timeout, DefaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	for k, vs := range h.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client(h.Client).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message below
		}
		return "", true, fmt.Errorf("POST %s: %w", redact.URL(h.URL), err)
	}
	defer resp.Body.Close()
	text := readBody(resp.Body, h.secrets()...)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if text != "" {
			return resp.Status + ": " + redact.Clip(text, 200), false, nil
		}
		return resp.Status, false, nil
	}
	err = fmt.Errorf("%s answered %s", redact.URL(h.URL), resp.Status)
	if text != "" {
		err = fmt.Errorf("%s answered %s: %s", redact.URL(h.URL), resp.Status, text)
	}
	if asked := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); asked > 0 {
		err = askedErr{err, asked}
	}
	return "", resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, err
}

// askedErr is an answer that asked to wait (Retry-After) before the next
// attempt.
type askedErr struct {
	error
	wait time.Duration
}

func (e askedErr) Unwrap() error             { return e.error }
func (e askedErr) RetryAfter() time.Duration { return e.wait }

func client(c *http.Client) *http.Client {
	if c == nil {
		return http.DefaultClient
	}
	return c
}

// readBody returns up to maxBody bytes of an upstream body, on one line,
// without control characters, and redacted (see internal/redact).
func readBody(r io.Reader, secrets ...string) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxBody+1))
	return redact.Body(b, maxBody, secrets...)
}
