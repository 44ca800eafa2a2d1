package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/notify"
)

// fakeGitHub stands in for the deployments and issues REST API.
type fakeGitHub struct {
	mu          sync.Mutex
	deployments []map[string]any // index+1 is the id
	statuses    map[int][]map[string]any
	comments    map[string][]string
	requests    []string
	fail        map[string]int // "METHOD path-prefix" → failures left
	srv         *httptest.Server
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{statuses: map[int][]map[string]any{}, comments: map[string][]string{}, fail: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	f.requests = append(f.requests, r.Method+" "+path)
	if r.Header.Get("Authorization") != "Bearer t0k3n" || r.Header.Get("Accept") != "application/vnd.github+json" ||
		r.Header.Get("X-GitHub-Api-Version") == "" {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	for k, n := range f.fail {
		if n > 0 && strings.HasPrefix(r.Method+" "+path, k) {
			f.fail[k] = n - 1
			http.Error(w, `{"message":"Server Error"}`, http.StatusBadGateway)
			return
		}
	}
	var body map[string]any
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
	}
	var id int
	var issue string
	switch {
	case r.Method == "POST" && path == "/repos/acme/checkout/deployments":
		f.deployments = append(f.deployments, body)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": len(f.deployments), "payload": body["payload"]})
	case r.Method == "GET" && path == "/repos/acme/checkout/deployments":
		q := r.URL.Query()
		list := []map[string]any{}
		for i := len(f.deployments) - 1; i >= 0; i-- { // newest first
			d := f.deployments[i]
			if d["ref"] == q.Get("ref") && d["environment"] == q.Get("environment") {
				list = append(list, map[string]any{"id": i + 1, "payload": d["payload"]})
			}
		}
		json.NewEncoder(w).Encode(list)
	case r.Method == "POST" && scan(path, "/repos/acme/checkout/deployments/%d/statuses", &id):
		if id < 1 || id > len(f.deployments) {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		f.statuses[id] = append(f.statuses[id], body)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": 1}`)
	case r.Method == "POST" && strings.HasSuffix(path, "/comments"):
		issue = strings.TrimSuffix(path, "/comments")
		f.comments[issue] = append(f.comments[issue], body["body"].(string))
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": 1}`)
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

func scan(s, format string, id *int) bool {
	n, err := fmt.Sscanf(s, format, id)
	return err == nil && n == 1 && fmt.Sprintf(format, *id) == s
}

// states returns the states posted for deployment id, with descriptions.
func (f *fakeGitHub) states(id int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.statuses[id] {
		out = append(out, fmt.Sprintf("%s: %s", s["state"], s["description"]))
	}
	return out
}

func TestGitHubDeploymentStatuses(t *testing.T) {
	f := newFakeGitHub(t)
	g := &notify.GitHub{Repository: "acme/checkout", Token: "t0k3n", BaseURL: f.srv.URL, CommentOn: []string{"ticket", "design"}}
	evs := events()
	// Issue links are on the GitHub of BaseURL.
	fin := evs["finished"]
	fin.Links = map[string]string{"ticket": f.srv.URL + "/acme/checkout/issues/12", "design": "docs/design.md", "log": "https://ci.example.com/run/7"}
	evs["finished"] = fin
	for _, k := range []string{"started", "phase", "step", "healthy", "breach", "rollback", "finished"} {
		if err := g.Notify(context.Background(), evs[k]); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if len(f.deployments) != 1 {
		t.Fatalf("%d deployments created, want 1", len(f.deployments))
	}
	wantDeployment := map[string]any{
		"ref": "abc123", "task": "deploy", "environment": "production", "auto_merge": false, "required_contexts": []any{},
		"description": "checkout v2: Faster checkout", "production_environment": true,
		"payload": map[string]any{"deployment_id": "checkout-production-1", "service": "checkout", "version": "v2"},
	}
	if diff := cmp.Diff(wantDeployment, f.deployments[0]); diff != "" {
		t.Errorf("deployment (-want +got):\n%s", diff)
	}
	wantStates := []string{
		"in_progress: release checkout v2 to production started",
		"in_progress: step 25% applied: exposure 25%, bake 10m0s",
		"in_progress: rolling back: error rate 5% > 1.5%",
		"failure: checkout v2 to production: rolled back — error rate 5% > 1.5%",
	}
	if diff := cmp.Diff(wantStates, f.states(1)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	last := f.statuses[1][3]
	if last["log_url"] != "https://ci.example.com/run/7" || last["environment"] != "production" || last["auto_inactive"] != true {
		t.Errorf("final status %v: want log_url, environment, auto_inactive", last)
	}
	if _, ok := last["environment_url"]; ok {
		t.Errorf("environment_url set with no environment link: %v", last)
	}
	if diff := cmp.Diff(map[string][]string{"/repos/acme/checkout/issues/12": {report}}, f.comments); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

func TestGitHubStateOf(t *testing.T) {
	evs := events()
	finished := func(s deploy.Status) deploy.Event {
		e := evs["finished"]
		e.Status = s
		return e
	}
	for _, tc := range []struct {
		name string
		e    deploy.Event
		want notify.DeploymentState
	}{
		{"started", evs["started"], notify.StateInProgress},
		{"waiting", evs["waiting"], notify.StateQueued},
		{"blocked", evs["blocked"], notify.StateError},
		{"phase", evs["phase"], ""},
		{"step", evs["step"], notify.StateInProgress},
		{"observation", evs["breach"], ""},
		{"rollback", evs["rollback"], notify.StateInProgress},
		{"rollback failed", evs["rollback failed"], notify.StateError},
		{"succeeded", finished(deploy.Succeeded), notify.StateSuccess},
		{"rolled back", finished(deploy.RolledBack), notify.StateFailure},
		{"aborted", finished(deploy.Aborted), notify.StateFailure},
		{"failed", finished(deploy.Failed), notify.StateFailure},
		{"blocked finish", finished(deploy.Blocked), notify.StateError},
		{"finished rollback failed", evs["finished urgent"], notify.StateError},
	} {
		got, ok := notify.StateOf(tc.e)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: StateOf = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestGitHubRecoversIDAfterRestart(t *testing.T) {
	f := newFakeGitHub(t)
	evs := events()
	cfg := func() *notify.GitHub {
		return &notify.GitHub{Repository: "acme/checkout", Token: "t0k3n", BaseURL: f.srv.URL + "/api/v3/", Environment: "prod-eu"}
	}
	// Another release of the same ref and environment, to be told apart.
	other := evs["started"]
	other.DeploymentID = "checkout-production-0"
	if err := cfg().Notify(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if err := cfg().Notify(context.Background(), evs["started"]); err != nil {
		t.Fatal(err)
	}
	// A third release, newer, so the listing has the wanted one in the middle.
	third := evs["started"]
	third.DeploymentID = "checkout-production-2"
	if err := cfg().Notify(context.Background(), third); err != nil {
		t.Fatal(err)
	}
	// The runner restarts: a new GitHub value continues release 1.
	g := cfg()
	for _, k := range []string{"step", "succeeded"} {
		if err := g.Notify(context.Background(), evs[k]); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.deployments) != 3 {
		t.Errorf("%d deployments, want 3 (no new one after the restart)", len(f.deployments))
	}
	want := []string{
		"in_progress: release checkout v2 to production started",
		"in_progress: step 25% applied: exposure 25%, bake 10m0s",
		"success: checkout v2 to production: succeeded",
	}
	if diff := cmp.Diff(want, f.states(2)); diff != "" {
		t.Errorf("statuses of the recovered deployment (-want +got):\n%s", diff)
	}
	if f.deployments[1]["environment"] != "prod-eu" || f.deployments[1]["production_environment"] != false {
		t.Errorf("deployment %v: want environment prod-eu", f.deployments[1])
	}
	// Only one listing after the restart: the id is remembered.
	lists := 0
	for _, r := range f.requests[9:] {
		if strings.HasPrefix(r, "GET ") {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("%d listings after the restart, want 1: %q", lists, f.requests)
	}
}

func TestGitHubRetryAfterPartialFailure(t *testing.T) {
	f := newFakeGitHub(t)
	g := &notify.GitHub{Repository: "acme/checkout", Token: "t0k3n", BaseURL: f.srv.URL, CommentOn: []string{"ticket"}}
	e := events()["finished"]
	e.Links = map[string]string{"ticket": f.srv.URL + "/acme/checkout/pull/7", "pr": f.srv.URL + "/acme/checkout/pull/8/"}
	g.CommentOn = []string{"ticket", "pr"}
	f.fail["POST /repos/acme/checkout/issues/8/comments"] = 1
	err := g.Notify(context.Background(), e)
	var he *notify.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway || !he.Temporary() || he.Notifier != "github" {
		t.Fatalf("Notify = %v, want a 502 *HTTPError", err)
	}
	if err := g.Notify(context.Background(), e); err != nil { // the runner's retry
		t.Fatal(err)
	}
	if n := len(f.states(1)); n != 1 {
		t.Errorf("%d final statuses after a retry, want 1", n)
	}
	want := map[string][]string{"/repos/acme/checkout/issues/7": {report}, "/repos/acme/checkout/issues/8": {report}}
	if diff := cmp.Diff(want, f.comments); diff != "" {
		t.Errorf("comments after a retry (-want +got):\n%s", diff)
	}
}

func TestGitHubErrors(t *testing.T) {
	f := newFakeGitHub(t)
	g := &notify.GitHub{Repository: "acme/checkout", Token: "wrong", BaseURL: f.srv.URL}
	err := g.Notify(context.Background(), events()["started"])
	var he *notify.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 401 || he.Temporary() || !strings.Contains(he.Body, "Bad credentials") {
		t.Errorf("bad token: %v, want a 401 *HTTPError", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the token: %v", err)
	}
	// Events that post nothing make no request.
	g.Client = &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
		t.Error("request for an observation")
		return respond(200), nil
	})}
	if err := g.Notify(context.Background(), events()["healthy"]); err != nil {
		t.Error(err)
	}
}

func TestGitHubEnterpriseLinks(t *testing.T) {
	f := newFakeGitHub(t)
	host := strings.TrimPrefix(f.srv.URL, "http://")
	g := &notify.GitHub{Repository: "acme/checkout", Token: "t0k3n", BaseURL: f.srv.URL + "/api/v3", CommentOn: []string{"ticket", "jira", "github.com"}}
	e := events()["finished"]
	e.Links = map[string]string{
		"ticket":     "http://" + host + "/acme/checkout/issues/3",
		"jira":       "https://acme.atlassian.net/browse/PAY-12",
		"github.com": "https://github.com/acme/checkout/issues/4", // another GitHub
	}
	if err := g.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"/repos/acme/checkout/issues/3": {report}}, f.comments); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

func TestGitHubValidate(t *testing.T) {
	for _, tc := range []struct {
		g    *notify.GitHub
		want string
	}{
		{&notify.GitHub{Token: "t"}, `notify: GitHub.Repository "" is not "owner/name"`},
		{&notify.GitHub{Repository: "https://github.com/acme/checkout", Token: "t"}, `notify: GitHub.Repository "https://github.com/acme/checkout" is not "owner/name"`},
		{&notify.GitHub{Repository: "acme/checkout"}, "notify: GitHub.Token is empty"},
		{&notify.GitHub{Repository: "acme/checkout", Token: "t", BaseURL: "ghe.example.com"}, `notify: GitHub.BaseURL "ghe.example.com": scheme "" is not http or https`},
		{&notify.GitHub{Repository: "acme/checkout", Token: "t", CommentOn: []string{"ticket", ""}}, "notify: GitHub.CommentOn[1] is empty"},
		{&notify.GitHub{Repository: "acme/checkout", Token: "t", Timeout: -1}, "notify: GitHub.Timeout -1ns is negative"},
		{&notify.GitHub{Repository: "acme/checkout", Token: "t"}, ""},
	} {
		got := ""
		if err := tc.g.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
	}
	g := &notify.GitHub{}
	if g.Name() != "github" {
		t.Error(`Name() != "github"`)
	}
	if g.Notify(context.Background(), events()["started"]) == nil {
		t.Error("Notify with no config: no error")
	}
}
