package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
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
)

// Headers of a Webhook delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, under the
	// shared secret, of the timestamp header's value, a dot, and the body.
	SignatureHeader = "X-Deploy-Signature"
	// TimestampHeader carries the time of the delivery attempt in Unix seconds.
	TimestampHeader = "X-Deploy-Timestamp"
	// EventHeader carries the event's kind ("started", "finished"…).
	EventHeader = "X-Deploy-Event"
	// DeliveryHeader identifies the event: it is the same on every retry of
	// one event, so a receiver can drop duplicates.
	DeliveryHeader = "X-Deploy-Delivery"
)

// MaxSkew is how far the timestamp of a delivery may be from the receiver's
// clock for VerifySignature to accept it.
const MaxSkew = 5 * time.Minute

// DefaultTimeout bounds each HTTP request of a notifier whose Timeout is 0.
const DefaultTimeout = 10 * time.Second

// ErrSignature is returned, wrapped, by VerifySignature when a delivery is
// not signed, is signed with another secret or for another body, or is too
// old or too far in the future.
var ErrSignature = errors.New("notify: bad signature")

// defaultClient is used by notifiers whose Client is nil. The request
// context carries the per-request timeout; the client's own timeout is a
// backstop.
var defaultClient = &http.Client{Timeout: time.Minute}

// Webhook POSTs each event as JSON (the encoding of deploy.Event) to URL.
//
// With Secret set, each request is signed: SignatureHeader is
// "sha256=<hex>", the HMAC-SHA256 under Secret of TimestampHeader's value,
// ".", and the body. Signing the timestamp lets a receiver refuse replays;
// VerifySignature does both checks. DeliveryHeader is a digest of the
// body, the same on every retry of an event.
//
// A response other than 2xx, a transport error or a timeout is returned as
// an error, so that the runner retries the event with backoff. The error is
// an *HTTPError for a non-2xx response; its Temporary method tells a
// receiver's refusal (4xx other than 408 and 429), which the runner does not
// retry, from an outage, which it retries up to its attempt limit, waiting at
// least as long as the receiver's Retry-After header asks (RetryAfter).
//
// A Webhook is safe for concurrent use; do not change its fields while it
// is in use.
type Webhook struct {
	// URL receives the POST requests; http or https.
	URL string
	// Secret is the shared HMAC key. Empty sends unsigned requests.
	Secret string
	// Header is added to every request (an Authorization header, say).
	// It may not set Content-Type or the X-Deploy-* headers.
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
		case ck == "Content-Type", ck == SignatureHeader, ck == TimestampHeader, ck == EventHeader, ck == DeliveryHeader:
			return fmt.Errorf("notify: Webhook.Header %q is set by the webhook itself", k)
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
		return fmt.Errorf("notify: webhook: %w", err)
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventHeader, string(e.Kind))
	sum := sha256.Sum256(body)
	req.Header.Set(DeliveryHeader, hex.EncodeToString(sum[:16]))
	now := time.Now()
	req.Header.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, now, body))
	}
	_, err = send(w.Client, req, "webhook")
	return err
}

// Sign returns the value of SignatureHeader for body sent at t:
// "sha256=" and the hex HMAC-SHA256 under secret of t in Unix seconds, a
// dot, and body.
func Sign(secret string, t time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(t.Unix(), 10), body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, ts)
	io.WriteString(m, ".")
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a Webhook delivery for a receiver: that h's
// SignatureHeader is the signature under secret of h's TimestampHeader and
// body, and that the timestamp is within MaxSkew of now. Pass the request
// body exactly as received. It returns nil or an error wrapping
// ErrSignature.
func VerifySignature(secret string, body []byte, h http.Header) error {
	sig, ts := h.Get(SignatureHeader), h.Get(TimestampHeader)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrSignature, SignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s does not start with sha256=", ErrSignature, SignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, SignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrSignature, TimestampHeader, ts)
	}
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return fmt.Errorf("%w: signature mismatch", ErrSignature)
	}
	if skew := time.Since(time.Unix(sec, 0)); skew > MaxSkew || skew < -MaxSkew {
		return fmt.Errorf("%w: timestamp %s is %v away from now (max %v)", ErrSignature, ts, skew.Round(time.Second), MaxSkew)
	}
	return nil
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

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// Nonsense and times in the past give 0.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

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
// error: an *HTTPError for another status. Transport errors name the host
// only.
func send(c *http.Client, req *http.Request, name string) ([]byte, error) {
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("notify: %s: %s %s: %w", name, req.Method, req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &HTTPError{Notifier: name, Method: req.Method, Host: req.URL.Host, StatusCode: resp.StatusCode,
			Body: clip(strings.TrimSpace(string(body)), 200), Retry: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if err != nil {
		return nil, fmt.Errorf("notify: %s: %s %s: reading response: %w", name, req.Method, req.URL.Host, err)
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
