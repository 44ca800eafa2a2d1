package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// TestHTTPRealServer posts to a real server: the payload, the headers, a 2xx
// that passes and a 4xx that blocks with its body, without retrying.
func TestHTTPRealServer(t *testing.T) {
	var (
		mu     sync.Mutex
		got    []gate.Payload
		status = http.StatusOK
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("request %s %v", r.Method, r.Header)
		}
		var p gate.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, p)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
		if st != http.StatusOK {
			io.WriteString(w, "migrations not tested:\n  0042_add_index.sql\n")
		}
	}))
	defer srv.Close()

	h := &gate.HTTP{URL: srv.URL + "/pre-rollout?token=x", Header: http.Header{"Authorization": {"Bearer s3cret"}},
		Metadata: map[string]string{"ticket": "OPS-1"}, Items: []deploy.Item{deploy.ItemMigrationsTested}}
	if err := h.Check(t.Context(), dep); err != nil {
		t.Fatalf("2xx: %v", err)
	}
	want := gate.Payload{Name: "checkout", Namespace: "production", Phase: "preflight", Metadata: map[string]string{"ticket": "OPS-1"},
		ID: "checkout-v2-1", Version: "v2", PreviousVersion: "v1", Commit: dep.Release.Commit, Stage: "production", Labels: map[string]string{"team": "payments"}}
	mu.Lock()
	if diff := cmp.Diff([]gate.Payload{want}, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	status = http.StatusPreconditionFailed
	mu.Unlock()
	err := h.Check(t.Context(), dep)
	wantBlock(t, err, srv.URL+"/pre-rollout?token=REDACTED answered 412 Precondition Failed: migrations not tested: 0042_add_index.sql")
	if strings.Contains(err.Error(), "token=x") {
		t.Errorf("err = %q shows the query", err)
	}
	mu.Lock()
	if len(got) != 2 {
		t.Errorf("%d requests, want 2 (a 4xx is not retried)", len(got))
	}
	mu.Unlock()
	if h.Name() != "http "+strings.TrimPrefix(srv.URL, "http://") { // no path: it may carry a secret
		t.Errorf("Name() = %q", h.Name())
	}
	if diff := cmp.Diff([]deploy.Item{deploy.ItemMigrationsTested}, h.ChecklistItems()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}

	// Nobody listening: the transport error, once (Attempts 1).
	srv.Close()
	wantBlock(t, (&gate.HTTP{URL: srv.URL, Attempts: 1}).Check(t.Context(), dep), "POST "+srv.URL+": ", "connection refused")
}

// TestHTTPRetries checks the backoff in virtual time, with an in-memory
// transport.
func TestHTTPRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var times []time.Duration
		start := time.Now()
		flaky := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			times = append(times, time.Since(start))
			if calls.Add(1) <= 2 {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		h := &gate.HTTP{Label: "smoke", URL: "http://checks.internal/ready", Client: flaky, Items: []deploy.Item{deploy.ItemOnCallNotified}}
		if err := h.Check(t.Context(), dep); err != nil {
			t.Fatalf("third attempt: %v", err)
		}
		// 1 s, then 2 s, each less up to 20 % jitter.
		if len(times) != 3 || times[0] != 0 || !within(times[1], 800*time.Millisecond, time.Second) ||
			!within(times[2]-times[1], 1600*time.Millisecond, 2*time.Second) {
			t.Errorf("attempt times %v, want 0, then 0.8-1s later, then 1.6-2s later", times)
		}
		if h.Name() != "smoke" {
			t.Errorf("Name() = %q", h.Name())
		}

		// Always 429: gives up after Attempts with the last answer.
		busy := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}))
		start = time.Now()
		err := (&gate.HTTP{URL: "http://checks.internal/ready", Client: busy, Attempts: 4, Backoff: 10 * time.Second}).Check(t.Context(), dep)
		wantBlock(t, err, "http://checks.internal/ready answered 429 Too Many Requests: slow down (after 4 attempts)")
		if got := time.Since(start); !within(got, 56*time.Second, 70*time.Second) {
			t.Errorf("gave up after %v, want 10s+20s+40s less up to 20%% jitter", got)
		}

		// A 503 with Retry-After: the next attempt waits as long as asked.
		var asked []time.Duration
		start = time.Now()
		later := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked = append(asked, time.Since(start))
			if len(asked) == 1 {
				w.Header().Set("Retry-After", "30")
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		if err := (&gate.HTTP{URL: "http://checks.internal/ready", Client: later}).Check(t.Context(), dep); err != nil {
			t.Fatalf("after Retry-After: %v", err)
		}
		if diff := cmp.Diff([]time.Duration{0, 30 * time.Second}, asked); diff != "" {
			t.Errorf("attempt times with Retry-After: 30 (-want +got):\n%s", diff)
		}

		// A server that never answers: each attempt times out.
		hang := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		start = time.Now()
		err = (&gate.HTTP{URL: "http://checks.internal/ready", Client: hang, Timeout: 5 * time.Second, Attempts: 2}).Check(t.Context(), dep)
		wantBlock(t, err, "POST http://checks.internal/ready: context deadline exceeded (after 2 attempts)")
		if got := time.Since(start); !within(got, 10800*time.Millisecond, 11*time.Second) {
			t.Errorf("gave up after %v, want 5s+1s+5s less up to 20%% jitter", got)
		}

		// Cancelled while backing off.
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(500*time.Millisecond, func() { cancel(errors.New("release aborted")) })
		err = (&gate.HTTP{URL: "http://checks.internal/ready", Client: busy}).Check(ctx, dep)
		wantBlock(t, err, "answered 429", "gave up after 1 attempts: release aborted")
	})
}

func TestHTTPValidate(t *testing.T) {
	for _, c := range []struct {
		h    gate.HTTP
		want string
	}{
		{gate.HTTP{}, "gate.HTTP: URL is empty"},
		{gate.HTTP{URL: "ftp://example.com/x"}, `URL "ftp://example.com/x" is not an http or https URL`},
		{gate.HTTP{URL: "/ready"}, `URL "/ready" is not an http or https URL`},
		{gate.HTTP{URL: "http:///ready"}, `URL "http:///ready" has no host`},
		{gate.HTTP{URL: "http://x", Timeout: -1}, "Timeout -1ns is negative"},
		{gate.HTTP{URL: "http://x", Attempts: -1}, "Attempts -1 is negative"},
		{gate.HTTP{URL: "http://x", Backoff: -time.Second}, "Backoff -1s is negative"},
		{gate.HTTP{URL: "http://x", Items: []deploy.Item{""}}, "Items[0] is empty"},
	} {
		if err := c.h.Validate(); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want ErrInvalid naming %q", err, c.want)
		}
		wantBlock(t, c.h.Check(t.Context(), dep), c.want)
	}
}

// TestHTTPEvidence: what the endpoint answered is the gate's evidence in
// the report.
func TestHTTPEvidence(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "checkout v2: 214 acceptance tests passed\n")
	}))
	defer srv.Close()
	h := &gate.HTTP{Label: "acceptance", URL: srv.URL + "/hooks/pre-rollout?token=secret", Items: []deploy.Item{deploy.ItemStagingVerified}}
	r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(0, 1)},
		deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithGates(h),
		deploy.WithWaiver(deploy.FridayDeploy, "test: any day"), deploy.WithSchedule(monitor.Schedule{}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "POST " + srv.URL + "/hooks/pre-rollout?token=REDACTED answered 200 OK: checkout v2: 214 acceptance tests passed"
	if len(rep.Gates) != 1 || rep.Gates[0].Evidence != want {
		t.Errorf("gates %+v, want evidence %q (the token redacted)", rep.Gates, want)
	}
}

// within reports whether lo <= d <= hi.
func within(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
