package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/internal/retry"
)

// DefaultTimeout bounds each HTTP request of a notifier whose Timeout is 0.
const DefaultTimeout = 10 * time.Second

// defaultClient is used by notifiers whose Client is nil. The request
// context carries the per-request timeout; the client's own timeout is a
// backstop.
var defaultClient = &http.Client{Timeout: time.Minute}

// Webhook POSTs each event as JSON (the encoding of deploy.Event) to URL.
//
// Each delivery is signed with Secret, in the [Scheme] chosen: by default
// Standard Webhooks (https://www.standardwebhooks.com: webhook-id,
// webhook-timestamp and webhook-signature "v1,<base64>"), which the
// ready-made verifiers of that specification check, or the X-Deploy-*
// headers ([DeployHeaders]). Either way the signature covers the delivery
// id, the timestamp and the body, so a receiver can refuse replays and
// forged ids; [VerifySignature] checks both schemes. The delivery id is a
// digest of the body, the same on every retry of an event, so a receiver
// can drop duplicates. An empty Secret is refused unless Unsigned is set.
//
// A response other than 2xx, a transport error or a timeout is returned as
// an error, so that the runner retries the event with backoff. The error is
// an *HTTPError for a non-2xx response; its Temporary method tells a
// receiver's refusal (4xx other than 408 and 429), which the runner does not
// retry, from an outage, which it retries up to its attempt limit, waiting at
// least as long as the receiver's Retry-After header asks (RetryAfter).
// Errors name the host only and never show Secret, the URL's path, query or
// credentials, or the values of credential headers.
//
// A Webhook is safe for concurrent use; do not change its fields while it
// is in use.
type Webhook struct {
	// URL receives the POST requests; http or https. It is treated as a
	// secret: errors name its host only.
	URL string
	// Secret is the shared HMAC key. For Standard Webhooks, a secret written
	// "whsec_<base64>" (as NewSecret makes) is the key those base64 bytes
	// stand for, as the specification's verifiers read it; any other
	// string is used as it is. Required unless Unsigned.
	Secret string
	// Scheme is how deliveries are signed; the zero value is
	// StandardWebhooks.
	Scheme Scheme
	// Unsigned sends deliveries without a signature. Only for receivers
	// that authenticate otherwise (mutual TLS, a header token).
	Unsigned bool
	// Header is added to every request (an Authorization header, say).
	// It may not set Content-Type or the signature headers.
	Header http.Header
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a default client.
	Client *http.Client
}

var _ deploy.Notifier = (*Webhook)(nil)

// Name returns "webhook".
func (*Webhook) Name() string { return "webhook" }

// Validate reports the first bad field: a URL that is not an absolute http
// or https URL, a negative Timeout, or a Header that is invalid or sets a
// header the webhook sets itself.
func (w *Webhook) Validate() error {
	if err := checkURL(w.URL); err != nil {
		// The URL may hold a secret; name the problem, not the value.
		return fmt.Errorf("notify: Webhook.URL: %w", err)
	}
	if w.Timeout < 0 {
		return fmt.Errorf("notify: Webhook.Timeout %v is negative", w.Timeout)
	}
	for k := range w.Header {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !validHeaderName(k):
			return fmt.Errorf("notify: Webhook.Header %q is not a valid header name", k)
		case ck == "Content-Type", ck == EventHeader, reservedHeader(ck):
			return fmt.Errorf("notify: Webhook.Header %q is set by the webhook itself", k)
		}
	}
	switch {
	case w.Scheme != StandardWebhooks && w.Scheme != DeployHeaders:
		return fmt.Errorf("notify: Webhook.Scheme %d is unknown", w.Scheme)
	case w.Secret == "" && !w.Unsigned:
		return fmt.Errorf("notify: Webhook.Secret is empty: %w (set Unsigned to send unsigned deliveries)", ErrEmptySecret)
	}
	if w.Secret != "" {
		if _, err := key(w.Scheme, w.Secret); err != nil {
			return fmt.Errorf("notify: Webhook.Secret: %w", err)
		}
	}
	return nil
}

// Notify implements deploy.Notifier: it POSTs e as JSON to URL.
func (w *Webhook) Notify(ctx context.Context, e deploy.Event) error {
	if err := w.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("notify: webhook: encoding event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout(w.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return redact.Error(fmt.Errorf("notify: webhook: %w", err), w.secrets()...)
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventHeader, string(e.Kind))
	// The delivery id is the event's idempotency key: the release and its
	// Seq, the same on every retry of the event, so receivers can
	// de-duplicate (an event without them is named by its body's hash).
	id := "msg_" + e.DeploymentID + "_" + strconv.Itoa(e.Seq)
	if e.DeploymentID == "" || e.Seq == 0 {
		sum := sha256.Sum256(body)
		id = "msg_" + hex.EncodeToString(sum[:16])
	}
	req.Header.Set("Idempotency-Key", id)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	idHeader, tsHeader, sigHeader := StandardIDHeader, StandardTimestampHeader, StandardSignatureHeader
	if w.Scheme == DeployHeaders {
		idHeader, tsHeader, sigHeader = DeliveryHeader, TimestampHeader, SignatureHeader
	}
	req.Header.Set(idHeader, id)
	req.Header.Set(tsHeader, ts)
	if w.Secret != "" {
		sig, err := Sign(w.Scheme, w.Secret, id, now, body)
		if err != nil {
			return fmt.Errorf("notify: webhook: %w", err)
		}
		req.Header.Set(sigHeader, sig)
	}
	_, err = send(w.Client, req, "webhook", w.secrets()...)
	return err
}

// secrets are what the webhook holds that no output may show.
func (w *Webhook) secrets() []string {
	return append(append([]string{w.Secret, w.URL}, redact.URLSecrets(w.URL)...), redact.HeaderSecrets(w.Header)...)
}

// HTTPError is a response other than 2xx from the service a notifier calls.
// Its message names the host, not the full URL: webhook URLs often carry a
// secret.
type HTTPError struct {
	// Notifier is the notifier's name ("webhook", "slack", "github").
	Notifier string
	Method   string
	// Host is the host the request went to.
	Host       string
	StatusCode int
	// Body is the start of the response body.
	Body string
	// Retry is how long the receiver asked to wait before trying again
	// (its Retry-After header, in seconds or as a date), or 0.
	Retry time.Duration
}

// RetryAfter returns how long the receiver asked to wait, or 0. The runner
// waits at least that long before the next attempt.
func (e *HTTPError) RetryAfter() time.Duration { return e.Retry }

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("notify: %s: %s %s: %d %s", e.Notifier, e.Method, e.Host, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Temporary reports whether a retry may succeed: true for 5xx, 408 Request
// Timeout, 429 Too Many Requests and any answer with a Retry-After (such as
// GitHub's 403 for its secondary rate limit), false for other statuses (the
// receiver refused the request and will refuse it again).
func (e *HTTPError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests ||
		e.Retry > 0 // a 403 with Retry-After: GitHub's secondary rate limit
}

const userAgent = "deploykit-notify"

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// send does req and returns the start of a 2xx response's body, or an
// error: an *HTTPError for another status. Errors name the host only, and
// the response body they carry is cut, put on one line and redacted of
// secrets and of URL credentials.
func send(c *http.Client, req *http.Request, name string, secrets ...string) ([]byte, error) {
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, redact.Error(fmt.Errorf("notify: %s: %s %s: %w", name, req.Method, req.URL.Host, err), secrets...)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &HTTPError{Notifier: name, Method: req.Method, Host: req.URL.Host, StatusCode: resp.StatusCode,
			Body: redact.Body(body, 200, secrets...), Retry: retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if err != nil {
		return nil, redact.Error(fmt.Errorf("notify: %s: %s %s: reading response: %w", name, req.Method, req.URL.Host, err), secrets...)
	}
	return body, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err // without the URL, which may hold a secret
		}
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

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return true
}

// clip shortens s to at most n bytes, at a rune boundary, marking the cut
// with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
