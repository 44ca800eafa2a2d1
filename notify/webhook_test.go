package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/notify"
)

// delivery is one request a test server received.
type delivery struct {
	Header http.Header
	Body   []byte
}

// receiver is an httptest server standing in for a webhook receiver; it
// answers status (200 by default).
type receiver struct {
	mu     sync.Mutex
	got    []delivery
	status int
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, delivery{req.Header.Clone(), b})
		w.WriteHeader(r.status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func TestWebhookSignedJSON(t *testing.T) {
	rcv := newReceiver(t)
	w := &notify.Webhook{URL: rcv.srv.URL + "/hooks/deploy", Secret: "s3cret", Header: http.Header{"Authorization": {"Bearer xyz"}}}
	e := events()["breach"]
	if err := w.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(context.Background(), e); err != nil { // a retry
		t.Fatal(err)
	}
	got := rcv.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	d := got[0]
	var back deploy.Event
	if err := json.Unmarshal(d.Body, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("body is not the event (-want +got):\n%s", diff)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Authorization": "Bearer xyz", notify.EventHeader: "observation",
	} {
		if v := d.Header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if err := notify.VerifySignature("s3cret", d.Body, d.Header); err != nil {
		t.Errorf("VerifySignature: %v", err)
	}
	if id := d.Header.Get(notify.StandardIDHeader); id == "" || id != got[1].Header.Get(notify.StandardIDHeader) {
		t.Errorf("delivery ids %q and %q: want the same, non-empty, on a retry", id, got[1].Header.Get(notify.StandardIDHeader))
	}
	if other := events()["step"]; true {
		w.Notify(context.Background(), other)
		if d2 := rcv.deliveries()[2]; d2.Header.Get(notify.StandardIDHeader) == d.Header.Get(notify.StandardIDHeader) {
			t.Error("two events share a delivery id")
		}
	}
}

func TestWebhookUnsigned(t *testing.T) {
	rcv := newReceiver(t)
	w := &notify.Webhook{URL: rcv.srv.URL, Unsigned: true}
	if err := w.Notify(context.Background(), events()["started"]); err != nil {
		t.Fatal(err)
	}
	d := rcv.deliveries()[0]
	if s := d.Header.Get(notify.StandardSignatureHeader) + d.Header.Get(notify.SignatureHeader); s != "" {
		t.Errorf("unsigned webhook sent %s %q", notify.SignatureHeader, s)
	}
	if err := notify.VerifySignature("s3cret", d.Body, d.Header); !errors.Is(err, notify.ErrSignature) {
		t.Errorf("VerifySignature of an unsigned delivery = %v, want ErrSignature", err)
	}
}

func TestVerifySignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := []byte(`{"kind":"started"}`)
		now := time.Now()
		sign := func(id string, ts time.Time) string {
			sig, err := notify.Sign(notify.DeployHeaders, "s3cret", id, ts, body)
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
		signed := func(id string, ts time.Time, sig string) http.Header {
			h := http.Header{}
			h.Set(notify.DeliveryHeader, id)
			h.Set(notify.TimestampHeader, strconv.FormatInt(ts.Unix(), 10))
			h.Set(notify.SignatureHeader, sig)
			return h
		}
		good := signed("msg_1", now, sign("msg_1", now))
		if err := notify.VerifySignature("s3cret", body, good); err != nil {
			t.Fatalf("good signature: %v", err)
		}
		for name, tc := range map[string]struct {
			secret string
			body   []byte
			h      http.Header
			want   string
		}{
			"wrong secret":     {"other", body, good, "signature mismatch"},
			"empty secret":     {"", body, good, "the secret is empty"},
			"tampered body":    {"s3cret", []byte(`{"kind":"finished"}`), good, "signature mismatch"},
			"no signature":     {"s3cret", body, http.Header{}, "no Webhook-Signature or X-Deploy-Signature header"},
			"not sha256":       {"s3cret", body, signed("msg_1", now, "sha1=abc"), "does not start with sha256="},
			"not hex":          {"s3cret", body, signed("msg_1", now, "sha256=zz"), "signature mismatch"},
			"id forged":        {"s3cret", body, signed("msg_2", now, sign("msg_1", now)), "signature mismatch"},
			"no id":            {"s3cret", body, signed("", now, sign("", now)), "no X-Deploy-Delivery header"},
			"timestamp forged": {"s3cret", body, signed("msg_1", now.Add(-time.Second), sign("msg_1", now)), "signature mismatch"},
			"stale":            {"s3cret", body, signed("msg_1", now.Add(-6*time.Minute), sign("msg_1", now.Add(-6*time.Minute))), "6m0s away from now"},
			"future":           {"s3cret", body, signed("msg_1", now.Add(10*time.Minute), sign("msg_1", now.Add(10*time.Minute))), "-10m0s away"},
		} {
			err := notify.VerifySignature(tc.secret, tc.body, tc.h)
			if !errors.Is(err, notify.ErrSignature) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want ErrSignature with %q", name, err, tc.want)
			}
		}
		h := signed("msg_1", now, sign("msg_1", now))
		h.Set(notify.TimestampHeader, "yesterday")
		if err := notify.VerifySignature("s3cret", body, h); !errors.Is(err, notify.ErrSignature) {
			t.Errorf("bad timestamp: %v", err)
		}
	})
}

func TestWebhookStatus(t *testing.T) {
	for _, tc := range []struct {
		status    int
		temporary bool
	}{
		{500, true}, {503, true}, {408, true}, {429, true}, {400, false}, {401, false}, {404, false}, {410, false},
	} {
		rcv := newReceiver(t)
		rcv.status = tc.status
		w := &notify.Webhook{URL: rcv.srv.URL + "/secret-path?token=t0k3n", Unsigned: true}
		err := w.Notify(context.Background(), events()["step"])
		var he *notify.HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("%d: error %v is not an *HTTPError", tc.status, err)
		}
		if he.StatusCode != tc.status || he.Temporary() != tc.temporary || he.Notifier != "webhook" || he.Body != "ok" {
			t.Errorf("%d: %+v, Temporary %v, want %v", tc.status, he, he.Temporary(), tc.temporary)
		}
		if strings.Contains(err.Error(), "secret-path") || strings.Contains(err.Error(), "t0k3n") {
			t.Errorf("error shows the URL: %v", err)
		}
	}
	rcv := newReceiver(t)
	rcv.status = http.StatusNoContent
	if err := (&notify.Webhook{URL: rcv.srv.URL, Unsigned: true}).Notify(context.Background(), events()["step"]); err != nil {
		t.Errorf("204: %v", err)
	}
}

// roundTripper adapts a function to http.RoundTripper: tests inside
// synctest use it instead of sockets.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func respond(status int) *http.Response {
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}
}

// hang is a transport that answers only when the request is cancelled.
var hang = roundTripper(func(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
})

func TestWebhookTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		w := &notify.Webhook{URL: "https://hooks.example.com/x", Unsigned: true, Timeout: 3 * time.Second, Client: &http.Client{Transport: hang}}
		err := w.Notify(context.Background(), events()["step"])
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Notify = %v, want a deadline error", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("gave up after %v, want 3s", d)
		}
		start = time.Now()
		w.Timeout = 0
		w.Notify(context.Background(), events()["step"])
		if d := time.Since(start); d != notify.DefaultTimeout {
			t.Errorf("default timeout %v, want %v", d, notify.DefaultTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		w.Notify(ctx, events()["step"])
		if d := time.Since(start); d != time.Second {
			t.Errorf("the caller's deadline was not honoured: %v", d)
		}
	})
}

func TestWebhookValidate(t *testing.T) {
	for _, tc := range []struct {
		w    notify.Webhook
		want string
	}{
		{notify.Webhook{}, `notify: Webhook.URL: scheme "" is not http or https`},
		{notify.Webhook{URL: "ftp://x/y"}, `notify: Webhook.URL: scheme "ftp" is not http or https`},
		{notify.Webhook{URL: "https://"}, "notify: Webhook.URL: no host"},
		{notify.Webhook{URL: "https://x\x7f/secret"}, "notify: Webhook.URL: net/url: invalid control character in URL"},
		{notify.Webhook{URL: "https://x", Timeout: -time.Second}, "notify: Webhook.Timeout -1s is negative"},
		{notify.Webhook{URL: "https://x", Header: http.Header{"X-Deploy-Signature": {"forged"}}}, `notify: Webhook.Header "X-Deploy-Signature" is set by the webhook itself`},
		{notify.Webhook{URL: "https://x", Header: http.Header{"content-type": {"text/plain"}}}, `notify: Webhook.Header "content-type" is set by the webhook itself`},
		{notify.Webhook{URL: "https://x", Header: http.Header{"Bad Header": {"v"}}}, `notify: Webhook.Header "Bad Header" is not a valid header name`},
		{notify.Webhook{URL: "https://x", Header: http.Header{"X-Team": {"payments"}}, Timeout: time.Second, Secret: "s3cret"}, ""},
		{notify.Webhook{URL: "https://x"}, "notify: Webhook.Secret is empty: notify: the secret is empty (set Unsigned to send unsigned deliveries)"},
		{notify.Webhook{URL: "https://x", Unsigned: true}, ""},
		{notify.Webhook{URL: "https://x", Secret: "whsec_!!"}, "notify: Webhook.Secret: a whsec_ secret must be base64 after the prefix"},
		{notify.Webhook{URL: "https://x", Secret: "s", Scheme: 7}, "notify: Webhook.Scheme 7 is unknown"},
		{notify.Webhook{URL: "https://x", Secret: "s", Header: http.Header{"webhook-signature": {"v1,forged"}}}, `notify: Webhook.Header "webhook-signature" is set by the webhook itself`},
	} {
		err := tc.w.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
		if err != nil {
			if nerr := tc.w.Notify(context.Background(), events()["step"]); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("Notify with a bad config = %v, want %v", nerr, err)
			}
		}
	}
	if (&notify.Webhook{}).Name() != "webhook" {
		t.Error(`Name() != "webhook"`)
	}
}

func TestWebhookDeliveryIDIsTheEventsIdempotencyKey(t *testing.T) {
	rcv := newReceiver(t)
	rcv.status = http.StatusServiceUnavailable
	w := &notify.Webhook{URL: rcv.srv.URL, Secret: "s3cret"}
	e := deploy.Event{Kind: deploy.EventStep, DeploymentID: "checkout-production-1", Seq: 7}
	_ = w.Notify(t.Context(), e) // fails: retried with the same event
	rcv.status = http.StatusOK
	if err := w.Notify(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	e.Seq = 8
	if err := w.Notify(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	d := rcv.deliveries()
	id := func(i int) string { return d[i].Header.Get(notify.StandardIDHeader) }
	if len(d) != 3 || id(0) != id(1) || id(1) == id(2) || d[1].Header.Get("Idempotency-Key") != id(1) || id(0) != "msg_checkout-production-1_7" {
		t.Errorf("ids %q, %q, %q: want the same id for a retried event, another for the next", id(0), id(1), id(2))
	}
}
