package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy/monitor"
)

var target = monitor.Target{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "prod", Phase: "verify"}

func check(t *testing.T, o monitor.Observation) monitor.Check {
	t.Helper()
	if len(o.Checks) != 1 {
		t.Fatalf("got %d checks, want 1: %+v", len(o.Checks), o.Checks)
	}
	return o.Checks[0]
}

func TestProbeRequest(t *testing.T) {
	type seen struct{ method, path, header, body, host string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("X-Token"), string(b), r.Host}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"ok","version":"v2"}`)
	}))
	defer srv.Close()

	p := &monitor.Probe{
		Method:   http.MethodPost,
		URL:      srv.URL + "/{{.Environment}}/{{.Service}}/health",
		Header:   http.Header{"X-Token": {"secret"}, "Host": {"checkout.internal"}},
		Body:     `{"expect":"{{.Version}}"}`,
		Status:   http.StatusAccepted,
		Contains: `"status":"ok"`,
		Match:    `"version":"v\d+"`,
		Critical: true,
	}
	o, err := p.Observe(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, o)
	if !c.OK || !c.Critical || !strings.HasPrefix(c.Name, "smoke POST "+srv.URL+"/prod/checkout/health") {
		t.Errorf("check = %+v, want OK, critical, named after the rendered URL", c)
	}
	s := <-got
	want := seen{"POST", "/prod/checkout/health", "secret", `{"expect":"v2"}`, "checkout.internal"}
	if s != want {
		t.Errorf("request = %+v, want %+v", s, want)
	}
	if m := o.Metric(monitor.ProbeSuccess); m.Value != 1 || m.Samples != 1 {
		t.Errorf("%s = %+v, want 1", monitor.ProbeSuccess, m)
	}
	if m := o.Metric(monitor.ProbeLatency); !m.HasData() || m.Value <= 0 {
		t.Errorf("%s = %+v, want a positive latency", monitor.ProbeLatency, m)
	}
}

func TestProbeFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "version v1")
	}))
	defer srv.Close()

	tests := []struct {
		name   string
		probe  monitor.Probe
		detail string
	}{
		{"any 2xx", monitor.Probe{URL: srv.URL + "/down"}, `status 503, want 2xx: body "database unreachable"`},
		{"status", monitor.Probe{URL: srv.URL, Status: 204}, `status 200, want 204`},
		{"contains", monitor.Probe{URL: srv.URL, Contains: "v2"}, `body does not contain "v2": body "version v1"`},
		{"match", monitor.Probe{URL: srv.URL, Match: `version {{.Version}}`}, `body does not match`},
		{"attempts", monitor.Probe{URL: srv.URL + "/down", Attempts: 2, Backoff: time.Millisecond}, `attempt 2 of 2: status 503`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.probe.Observe(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			c := check(t, o)
			if c.OK || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("check = %+v, want failed with detail containing %q", c, tt.detail)
			}
			if m := o.Metric(monitor.ProbeSuccess); m.Value != 0 || m.Samples != 1 {
				t.Errorf("%s = %+v, want 0 with 1 sample", monitor.ProbeSuccess, m)
			}
		})
	}
}

// A service that does not answer is a failed check, not an error: the probe
// did measure.
func TestProbeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	p := &monitor.Probe{URL: "http://" + addr + "/health", MetricPrefix: "api"}
	o, err := p.Observe(context.Background(), target)
	if err != nil {
		t.Fatalf("Observe error = %v, want a failed check", err)
	}
	if c := check(t, o); c.OK || !strings.Contains(c.Detail, "refused") {
		t.Errorf("check = %+v, want failed: connection refused", c)
	}
	if m := o.Metric("api_latency_seconds"); m.HasData() {
		t.Errorf("api_latency_seconds = %+v, want no data when nothing answered", m)
	}
	if m := o.Metric("api_success"); m.Value != 0 || m.Samples != 1 {
		t.Errorf("api_success = %+v, want 0", m)
	}
}

func TestProbeValidate(t *testing.T) {
	tests := []struct {
		probe monitor.Probe
		want  string // "" means valid
	}{
		{monitor.Probe{URL: "https://example.com/health"}, ""},
		{monitor.Probe{URL: "https://{{.Service}}.example.com/"}, ""},
		{monitor.Probe{}, `monitor: Probe.URL "" is empty`},
		{monitor.Probe{URL: "example.com/health"}, `monitor: Probe.URL "example.com/health": scheme "" is not http or https`},
		{monitor.Probe{URL: "https://x/{{.Service"}, `monitor: Probe.URL "https://x/{{.Service"`},
		{monitor.Probe{URL: "https://x/", Body: "{{"}, `monitor: Probe.Body "{{"`},
		{monitor.Probe{URL: "https://x/", Method: "GE T"}, `monitor: Probe.Method "GE T" is not a valid HTTP method`},
		{monitor.Probe{URL: "https://x/", Status: 42}, `monitor: Probe.Status 42 is not an HTTP status code`},
		{monitor.Probe{URL: "https://x/", Match: "("}, `monitor: Probe.Match "("`},
		{monitor.Probe{URL: "https://x/", MaxLatency: -1}, `monitor: Probe.MaxLatency -1ns is negative`},
		{monitor.Probe{URL: "https://x/", Attempts: -2}, `monitor: Probe.Attempts -2 is negative`},
		{monitor.Probe{URL: "https://x/", Backoff: -time.Second}, `monitor: Probe.Backoff -1s is negative`},
		{monitor.Probe{URL: "https://x/", Timeout: -time.Second}, `monitor: Probe.Timeout -1s is negative`},
	}
	for _, tt := range tests {
		err := tt.probe.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: Validate() = %v, want nil", tt.probe, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("%+v: Validate() = %v, want %q", tt.probe, err, tt.want)
		}
	}
}

func TestProbeTemplateError(t *testing.T) {
	p := &monitor.Probe{URL: "https://{{.Nope}}/"}
	_, err := p.Observe(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), `monitor: Probe.URL "https://{{.Nope}}/"`) {
		t.Errorf("Observe error = %v, want one naming Probe.URL", err)
	}
}

// handlerTransport serves requests in memory, so probes run inside a
// synctest bubble where time is virtual.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// slow answers after delay, or fails with 500 for the first fails requests.
func slow(delay time.Duration, fails int32) (http.Handler, *atomic.Int32) {
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if n.Add(1) <= fails {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}), &n
}

func TestProbeTiming(t *testing.T) {
	t.Run("latency measured", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := slow(250*time.Millisecond, 0)
			p := &monitor.Probe{URL: "http://svc/", Client: &http.Client{Transport: handlerTransport{h}}}
			o, err := p.Observe(t.Context(), target)
			if err != nil {
				t.Fatal(err)
			}
			if c := check(t, o); !c.OK || c.Detail != "passed in 250ms" {
				t.Errorf("check = %+v, want passed in 250ms", c)
			}
			if m := o.Metric(monitor.ProbeLatency); m.Value != 0.25 {
				t.Errorf("latency = %v, want 0.25", m.Value)
			}
		})
	})
	t.Run("latency bound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := slow(2*time.Second, 0)
			p := &monitor.Probe{URL: "http://svc/", MaxLatency: time.Second, Client: &http.Client{Transport: handlerTransport{h}}}
			o, _ := p.Observe(t.Context(), target)
			if c := check(t, o); c.OK || c.Detail != "took 2s, more than 1s" {
				t.Errorf("check = %+v, want failed: took 2s, more than 1s", c)
			}
			if m := o.Metric(monitor.ProbeLatency); m.Value != 2 {
				t.Errorf("latency = %v, want 2", m.Value)
			}
		})
	})
	t.Run("retries with backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, n := slow(100*time.Millisecond, 2)
			p := &monitor.Probe{URL: "http://svc/", Attempts: 4, Backoff: time.Second, Client: &http.Client{Transport: handlerTransport{h}}}
			start := time.Now()
			o, err := p.Observe(t.Context(), target)
			if err != nil {
				t.Fatal(err)
			}
			// Three attempts of 100ms, with 1s then 2s between them, each
			// wait less up to 20 % jitter.
			if d := time.Since(start); d < 2700*time.Millisecond || d > 3300*time.Millisecond {
				t.Errorf("probe took %v, want 2.7s to 3.3s", d)
			}
			if n.Load() != 3 {
				t.Errorf("%d requests, want 3", n.Load())
			}
			c := check(t, o)
			if !c.OK || !strings.Contains(c.Detail, "on attempt 3 of 4 (before: attempt 2 of 4: status 500, want 2xx)") {
				t.Errorf("check = %+v, want passed on attempt 3", c)
			}
		})
	})
	t.Run("attempt timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := slow(time.Minute, 0)
			p := &monitor.Probe{URL: "http://svc/", Timeout: 5 * time.Second, Attempts: 2, Backoff: time.Second, Client: &http.Client{Transport: handlerTransport{h}}}
			start := time.Now()
			o, err := p.Observe(t.Context(), target)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 10800*time.Millisecond || d > 11*time.Second {
				t.Errorf("probe took %v, want 10.8s to 11s (two 5s timeouts, 0.8s to 1s apart)", d)
			}
			if c := check(t, o); c.OK || !strings.Contains(c.Detail, "attempt 2 of 2") || !strings.Contains(c.Detail, "deadline exceeded") {
				t.Errorf("check = %+v, want failed on a deadline", c)
			}
		})
	})
	t.Run("cancelled during backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := slow(0, 100)
			p := &monitor.Probe{URL: "http://svc/", Attempts: 3, Backoff: time.Minute, Client: &http.Client{Transport: handlerTransport{h}}}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := p.Observe(ctx, target)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "after 1 of 3 attempts: attempt 1 of 3: status 500") {
				t.Errorf("Observe error = %v, want deadline exceeded after 1 attempt", err)
			}
		})
	})
}

func TestProbeJSONBodyEscapesReleaseFields(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	p := &monitor.Probe{URL: srv.URL + "/check", Method: http.MethodPost, Body: `{"version":"{{.Version}}","team":"{{index .Labels "team"}}"}`}
	tg := monitor.Target{Version: "v2", Labels: map[string]string{"team": `pay","admin":true,"x":"`}}
	if _, err := p.Observe(t.Context(), tg); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(got, &body); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if len(body) != 2 || body["team"] != `pay","admin":true,"x":"` {
		t.Errorf("body %s: a label changed the JSON's structure", got)
	}
}
