// Package github is the project's one GitHub REST client, shared by gate.CI
// and notify.GitHub: the headers GitHub asks for (Accept, the API version, a
// User-Agent, the bearer token), a timeout per request, pagination by the
// Link header, and rate limits read once (429, a 403 with no requests
// remaining or with Retry-After, Retry-After and X-RateLimit-Reset).
//
// What it returns is redacted (see internal/redact): URLs lose their query
// values and credentials, and the token and the secret parts of the base
// URL never appear in an error or a body.
package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/internal/retry"
)

// DefaultBaseURL is the base address of the GitHub REST API.
const DefaultBaseURL = "https://api.github.com"

// apiVersion is the REST API version requested.
const apiVersion = "2022-11-28"

// maxResponse is how much of a response body is read.
const maxResponse = 1 << 20

// Client calls the GitHub REST API. The zero value calls api.github.com
// without a token. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the API root; empty means DefaultBaseURL. For GitHub
	// Enterprise Server it is "https://HOST/api/v3".
	BaseURL string
	// Token is sent as a bearer token; empty sends none.
	Token string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each request; 0 means none beyond ctx's.
	Timeout time.Duration
}

// Secrets returns what the client holds that no output may show: the token
// and the secret parts of BaseURL.
func (c *Client) Secrets() []string {
	return append([]string{c.Token}, redact.URLSecrets(c.BaseURL)...)
}

// URL returns the address of path ("/repos/o/r/deployments"), which is
// appended to BaseURL.
func (c *Client) URL(path string) string {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimSuffix(base, "/") + path
}

// Error is a request that failed: one that got no answer (Err is set), or
// an answer other than 2xx.
type Error struct {
	// Method and URL are the request's; URL is redacted.
	Method, URL string
	// Host is the host the request went to.
	Host string
	// Err is why no answer came (a transport error, a timeout), or nil.
	Err error
	// StatusCode and Status are the answer's ("404", "404 Not Found").
	StatusCode int
	Status     string
	// RateLimited is set for a 429, and for a 403 with no requests left
	// (X-RateLimit-Remaining: 0) or with a Retry-After (GitHub's secondary
	// rate limit).
	RateLimited bool
	// Wait is how long GitHub asked to wait: its Retry-After, or the time
	// until X-RateLimit-Reset when no requests are left; 0 if it did not say.
	Wait time.Duration

	body    []byte
	secrets []string
}

// Body returns up to n bytes of the answer's body, on one line and
// redacted.
func (e *Error) Body(n int) string { return redact.Body(e.body, n, e.secrets...) }

// RetryAfter returns Wait.
func (e *Error) RetryAfter() time.Duration { return e.Wait }

// Temporary reports whether another attempt may succeed: no answer came,
// or it was a 5xx, a 408 or a rate limit.
func (e *Error) Temporary() bool {
	return e.Err != nil || e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || e.RateLimited
}

func (e *Error) Error() string {
	if e.Err != nil {
		return redact.Text(fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err), e.secrets...)
	}
	s := e.Method + " " + e.URL + ": " + e.Status
	if b := e.Body(200); b != "" {
		s += ": " + b
	}
	return s
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Get gets path and returns the body of a 2xx answer.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	b, _, err := c.send(ctx, http.MethodGet, c.URL(path), nil)
	return b, err
}

// Call sends in, if not nil, as JSON, and decodes a 2xx answer into out,
// if not nil.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
	}
	u := c.URL(path)
	b, _, err := c.send(ctx, method, u, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, redact.URL(u), err)
	}
	return nil
}

// Pages gets path and the pages after it (Link: rel="next"), at most limit
// in all, calling page with each body until it returns false or an error.
// A next page on another host than BaseURL's is not followed.
func (c *Client) Pages(ctx context.Context, path string, limit int, page func([]byte) (more bool, err error)) error {
	u := c.URL(path)
	for range limit {
		b, h, err := c.send(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if more, err := page(b); err != nil || !more {
			return err
		}
		if u = c.next(h.Get("Link")); u == "" {
			return nil
		}
	}
	return nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// next returns the next page's address from a Link header, or "" when
// there is none or it is on another host.
func (c *Client) next(link string) string {
	m := linkNext.FindStringSubmatch(link)
	if m == nil {
		return ""
	}
	n, err1 := url.Parse(m[1])
	b, err2 := url.Parse(c.URL(""))
	if err1 != nil || err2 != nil || !strings.EqualFold(n.Host, b.Host) || n.Scheme != b.Scheme {
		return ""
	}
	return m[1]
}

// send does one request and returns the body and the header of a 2xx
// answer, or an *Error.
func (c *Client) send(ctx context.Context, method, u string, body []byte) ([]byte, http.Header, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return nil, nil, &Error{Method: method, URL: redact.URL(u), Err: err, secrets: c.Secrets()}
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", "deploykit")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	fail := &Error{Method: method, URL: redact.URL(u), Host: req.URL.Host, secrets: c.Secrets()}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message
		}
		fail.Err = err
		return nil, nil, fail
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fail.StatusCode, fail.Status, fail.body = resp.StatusCode, resp.Status, b
		fail.RateLimited, fail.Wait = rateLimit(resp, time.Now())
		return nil, nil, fail
	}
	if err != nil {
		fail.Err = fmt.Errorf("reading the answer: %w", err)
		return nil, nil, fail
	}
	return b, resp.Header, nil
}

// rateLimit reads GitHub's rate-limit answer: whether resp is one, and how
// long it asks to wait.
func rateLimit(resp *http.Response, now time.Time) (limited bool, wait time.Duration) {
	h := resp.Header
	wait = retry.ParseRetryAfter(h.Get("Retry-After"), now)
	exhausted := h.Get("X-RateLimit-Remaining") == "0"
	if wait == 0 && exhausted {
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			wait = min(max(time.Unix(reset, 0).Sub(now), 0), time.Hour)
		}
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true, wait
	case http.StatusForbidden:
		return exhausted || wait > 0, wait
	}
	return false, wait
}
