package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/state"
)

// The recognisable secrets of TestSecretsNeverLeakThroughARelease.
var planted = []string{
	"CIPASS-9f8e7d", "CITOKEN-1a2b3c", "PROBETOKEN-4d5e6f", "PROBEAUTH-7a8b9c",
	"HOOKSECRET-0d1e2f", "HOOKTOKEN-3a4b5c", "HTTPAUTH-6d7e8f", "HTTPQUERY-9a0b1c",
}

// down is a transport for an unreachable host: its error names the URL, as
// a dial error does.
type down struct{}

func (down) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("dial tcp %s: connect: connection refused (while fetching %s with %s)", r.URL.Host, r.URL.String(), r.Header.Get("Authorization"))
}

// hostile answers everything with 500 and a body that repeats the request:
// its URL, its credentials and its signature.
var hostile = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "internal error for %s\n", r.URL.String())
	for k, vs := range r.Header {
		fmt.Fprintf(&sb, "%s: %s\n", k, strings.Join(vs, ","))
	}
	http.Error(w, sb.String(), http.StatusInternalServerError)
})

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverLeakThroughARelease runs releases whose every integration
// holds a recognisable secret, against unreachable and hostile endpoints,
// and greps every output channel: the returned error, the report, the
// record, the spans, slog, the Console and the events (issue 12).
func TestSecretsNeverLeakThroughARelease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gates []deploy.Gate
		mon   deploy.Monitor
	}{
		{"unreachable CI", []deploy.Gate{&gate.CI{Owner: "o", Repo: "r", Token: "CITOKEN-1a2b3c",
			BaseURL: "https://ci:CIPASS-9f8e7d@ci.example/api?key=CITOKEN-1a2b3c", Client: &http.Client{Transport: down{}}}}, deploytest.Healthy()},
		{"hostile HTTP check", []deploy.Gate{&gate.HTTP{URL: "https://checks.example/pre?token=HTTPQUERY-9a0b1c", Attempts: 1,
			Header: http.Header{"Authorization": {"Bearer HTTPAUTH-6d7e8f"}}, Client: memClient(hostile)}}, deploytest.Healthy()},
		{"hostile probe", nil, &monitor.Probe{URL: "https://svc.example/health?token=PROBETOKEN-4d5e6f", Critical: true,
			Header: http.Header{"Authorization": {"Bearer PROBEAUTH-7a8b9c"}}, Client: memClient(hostile)}},
		{"unreachable probe", nil, &monitor.Probe{URL: "https://probe:PROBETOKEN-4d5e6f@svc.example/health", Critical: true,
			Header: http.Header{"Authorization": {"Bearer PROBEAUTH-7a8b9c"}}, Client: &http.Client{Transport: down{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sr := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
				var logs, console syncBuffer
				rec := &deploytest.Recorder{}
				store := state.NewMemory()
				hook := &notify.Webhook{URL: "https://hooks.example/deploy?token=HOOKTOKEN-3a4b5c", Secret: "HOOKSECRET-0d1e2f",
					Header: http.Header{"Authorization": {"Bearer HOOKTOKEN-3a4b5c"}}, Client: memClient(hostile)}
				r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.5, 1)},
					deploy.WithStore(store),
					deploy.WithGates(tc.gates...),
					deploy.WithMonitors(tc.mon),
					deploy.WithNotifiers(rec, hook, &notify.Console{W: &console, Report: true}, notify.Log{Logger: slog.New(slog.NewTextHandler(&logs, nil))}),
					deploy.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
					deploy.WithTracerProvider(tp),
					deploy.WithSchedule(monitor.Schedule{}),
					deploy.WithGateDeadline(time.Hour),
					deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"),
				)
				if err != nil {
					t.Fatal(err)
				}
				rep, runErr := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Commit: "abc123"})
				if runErr == nil {
					t.Fatalf("the release succeeded:\n%s", rep.Markdown())
				}
				channels := map[string]string{
					"error":   runErr.Error(),
					"report":  rep.Markdown() + rep.Headline() + rep.Error,
					"slog":    logs.String(),
					"console": console.String(),
				}
				if b, err := json.Marshal(rec.Events()); err == nil {
					channels["events"] = string(b)
				}
				if recd, err := store.Load(context.Background(), rep.ID); err == nil {
					b, _ := json.Marshal(recd)
					channels["record"] = string(b)
				} else {
					t.Errorf("loading the record: %v", err)
				}
				var spans strings.Builder
				for _, s := range sr.Ended() {
					fmt.Fprintf(&spans, "%s %v %v\n", s.Name(), s.Status(), s.Attributes())
					for _, e := range s.Events() {
						fmt.Fprintf(&spans, "  %s %v\n", e.Name, e.Attributes)
					}
				}
				channels["spans"] = spans.String()
				for ch, text := range channels {
					for _, sec := range planted {
						if strings.Contains(text, sec) {
							t.Errorf("%s shows the secret %s:\n%s", ch, sec, excerpt(text, sec))
						}
					}
				}
				if channels["record"] == "" {
					t.Error("the record was not read")
				}
			})
		})
	}
}

func excerpt(text, sec string) string {
	i := strings.Index(text, sec)
	return text[max(0, i-200):min(len(text), i+len(sec)+100)]
}
