package monitor_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

var webTarget = monitor.Target{DeploymentID: "checkout-v2-1", Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production", Phase: "bake"}

// statusServer answers a fixed JSON document on GET /status, and echoes
// on POST /query what it was sent.
func statusServer(t *testing.T, doc string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			io.WriteString(w, doc)
		case "/query":
			b, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer k3y" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"echo":`+string(b)+`,"rate":0.25}`)
		case "/down":
			http.Error(w, `{"error":"database unavailable"}`, http.StatusServiceUnavailable)
		case "/slow":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestWebSelectsTheValue reproduces Argo Rollouts' web provider
// (https://argoproj.github.io/argo-rollouts/analysis/web/: url, jsonPath
// "{$.data.ok}"): numbers, booleans and numeric strings are values, null is
// no data.
func TestWebSelectsTheValue(t *testing.T) {
	srv := statusServer(t, `{"data":{"ok":true,"down":false,"errorRate":0.013,"p95":"0.25","none":null,
		"items":[{"name":"a","value":3},{"name":"b","value":7}],"error rate":2}}`)
	for _, tc := range []struct {
		path string
		want float64
	}{
		{"{$.data.ok}", 1},
		{"$.data.down", 0},
		{"$.data.errorRate", 0.013},
		{"data.p95", 0.25},
		{"{$.data.items[1].value}", 7},
		{"$['data']['error rate']", 2},
		{"$.data.none", math.NaN()},
	} {
		w := &monitor.Web{Metric: "m", URL: srv.URL + "/status", JSONPath: tc.path}
		obs, err := w.Observe(t.Context(), webTarget)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		m := obs.Metric("m")
		if math.IsNaN(tc.want) {
			if m.HasData() {
				t.Errorf("%s: %v, want no data", tc.path, m.Value)
			}
			continue
		}
		if !m.HasData() || m.Value != tc.want || m.Samples != 1 {
			t.Errorf("%s: %+v, want %v", tc.path, m, tc.want)
		}
	}
}

// TestWebErrorsSayWhatWasWrong: a path that selects nothing names where it
// stopped and what was there; a value that is no number says what it is.
func TestWebErrorsSayWhatWasWrong(t *testing.T) {
	srv := statusServer(t, `{"data":{"ok":"yes","list":[1],"obj":{"a":1}}}`)
	for _, tc := range []struct{ path, url, want string }{
		{"$.data.missing", "/status", `key "missing" not found in $.data (keys: "list", "obj", "ok")`},
		{"$.data.ok", "/status", `the value is the string "yes", not a number or a boolean`},
		{"$.data.obj", "/status", "the value is an object, not a number or a boolean"},
		{"$.data.list[3]", "/status", "index 3 out of range at $.data.list (length 1)"},
		{"$.data.ok.x", "/status", "$.data.ok is a string, not an object or an array"},
		{"$.x", "/down", `answered 503 Service Unavailable: {"error":"database unavailable"}`},
		{"$.x", "/missing", "answered 404"},
	} {
		w := &monitor.Web{Metric: "m", URL: srv.URL + tc.url, JSONPath: tc.path}
		_, err := w.Observe(t.Context(), webTarget)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: err = %v, want it to contain %q", tc.url, tc.path, err, tc.want)
		}
	}
}

// TestWebPostsATemplatedBody: POST with a JSON body made from the release
// (each field escaped inside its string) and a credential header that no
// error shows.
func TestWebPostsATemplatedBody(t *testing.T) {
	srv := statusServer(t, "")
	w := &monitor.Web{Metric: "rate", URL: srv.URL + "/query", Method: http.MethodPost, Header: http.Header{"Authorization": {"Bearer k3y"}},
		Body: `{"service":"{{.Service}}","version":"{{.Version}}"}`, JSONPath: "$.rate"}
	tg := webTarget
	tg.Version = `v2","x":"y`
	obs, err := w.Observe(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if m := obs.Metric("rate"); m.Value != 0.25 {
		t.Errorf("rate %+v", m)
	}
	w.JSONPath = "$.echo.version"
	if _, err := w.Observe(t.Context(), tg); err == nil || !strings.Contains(err.Error(), `string "v2\",\"x\":\"y"`) {
		t.Errorf("the version changed the body's structure: %v", err)
	}
}

// TestWebIsBounded: a large answer is refused, not cut; a slow endpoint
// times out; secrets in the URL do not show.
func TestWebIsBounded(t *testing.T) {
	srv := statusServer(t, `{"pad":"`+strings.Repeat("x", 2000)+`","v":1}`)
	w := &monitor.Web{Metric: "m", URL: srv.URL + "/status", JSONPath: "$.v", MaxBody: 1000}
	if _, err := w.Observe(t.Context(), webTarget); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("err = %v", err)
	}
	w = &monitor.Web{Metric: "m", URL: srv.URL + "/slow?api_key=s3cr3tv4lue", JSONPath: "$.v", Timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := w.Observe(context.Background(), webTarget)
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") || strings.Contains(err.Error(), "s3cr3tv4lue") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestWebValidate(t *testing.T) {
	for _, w := range []monitor.Web{
		{URL: "http://x/", JSONPath: "$.a"},
		{Metric: "m", JSONPath: "$.a"},
		{Metric: "m", URL: "ftp://x/", JSONPath: "$.a"},
		{Metric: "m", URL: "http://x/"},
		{Metric: "m", URL: "http://x/", JSONPath: "$.items[?(@.ok)]"},
		{Metric: "m", URL: "http://x/", JSONPath: "{$.a"},
		{Metric: "m", URL: "http://x/", JSONPath: "$.a", Method: "GE T"},
		{Metric: "m", URL: "http://x/", JSONPath: "$.a", MaxBody: -1},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v: no error", w)
		} else if _, oerr := w.Observe(t.Context(), webTarget); oerr == nil || oerr.Error() != err.Error() {
			t.Errorf("%+v: Observe said %v, want the Validate error %v", w, oerr, err)
		}
	}
}
