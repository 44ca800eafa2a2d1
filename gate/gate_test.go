package gate_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin wherever the tests run

	"github.com/deploykit/deploy"
)

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// dep is the deployment the gates are checked with.
var dep = &deploy.Deployment{
	ID:      "checkout-v2-1",
	Release: deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production", Commit: "0123456789abcdef0123456789abcdef01234567", Labels: map[string]string{"team": "payments"}},
	Stage:   deploy.Stage{Name: "production"},
}

// handlerTransport serves requests with a handler in memory, so that HTTP
// gates run inside a synctest bubble (real sockets do not block durably).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

func memClient(h http.Handler) *http.Client { return &http.Client{Transport: handlerTransport{h}} }

// wantRetry checks that err asks to be retried at want with a message
// containing reason.
func wantRetry(t *testing.T, err error, want time.Time, reason string) {
	t.Helper()
	at, ok := deploy.IsRetry(err)
	if !ok {
		t.Fatalf("err = %v, want RetryAt(%s, %q)", err, want, reason)
	}
	if !at.Equal(want) {
		t.Errorf("retry at %s, want %s (err %v)", at, want, err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("err = %q, want it to contain %q", err, reason)
	}
}

// wantBlock checks that err blocks (is not a retry) with a message containing
// every one of reasons.
func wantBlock(t *testing.T, err error, reasons ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want a block with %q", reasons)
	}
	if at, ok := deploy.IsRetry(err); ok {
		t.Fatalf("err = %v asks to retry at %s, want a block", err, at)
	}
	for _, r := range reasons {
		if !strings.Contains(err.Error(), r) {
			t.Errorf("err = %q, want it to contain %q", err, r)
		}
	}
}
