package gate_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

// github stands in for GitHub's combined status API: status maps a ref to
// the JSON it answers, or to an HTTP status code.
func github(t *testing.T, status map[string]any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "application/vnd.github+json" {
			t.Errorf("request %s %v", r.Method, r.Header)
		}
		path := strings.TrimPrefix(r.URL.Path, "/api/v3") // GitHub Enterprise Server
		ref, ok := strings.CutPrefix(path, "/repos/deploykit/deploy/commits/")
		ref, ok2 := strings.CutSuffix(ref, "/status")
		if !ok || !ok2 {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		switch v := status[ref].(type) {
		case string:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, v)
		case int:
			if v == http.StatusForbidden {
				w.Header().Set("X-RateLimit-Remaining", "0")
			}
			http.Error(w, `{"message":"`+http.StatusText(v)+`"}`, v)
		default:
			http.Error(w, `{"message":"No commit found for SHA: `+ref+`"}`, http.StatusNotFound)
		}
	})
}

const (
	ciSuccess = `{"state":"success","sha":"s","total_count":2,"statuses":[{"state":"success","context":"ci/test"},{"state":"success","context":"lint"}]}`
	ciPending = `{"state":"pending","total_count":3,"statuses":[{"state":"success","context":"lint"},{"state":"pending","context":"ci/test","description":"running"},{"state":"pending","context":"ci/e2e"}]}`
	ciNone    = `{"state":"pending","total_count":0,"statuses":[]}`
	ciFailure = `{"state":"failure","total_count":3,"statuses":[{"state":"failure","context":"ci/test","description":"3 tests failed","target_url":"https://ci/812"},{"state":"error","context":"lint"},{"state":"success","context":"ci/e2e"}]}`
)

var ciRefs = map[string]any{
	dep.Release.Commit: ciSuccess, "pending": ciPending, "none": ciNone, "failure": ciFailure,
	"weird": `{"state":"cancelled"}`, "broken": `{"state":`, "busy": 502, "limited": 403, "badtoken": 401,
}

func TestCIRealServer(t *testing.T) {
	srv := httptest.NewServer(github(t, ciRefs))
	defer srv.Close()
	ci := func(ref string) *gate.CI {
		return &gate.CI{BaseURL: srv.URL + "/", Owner: "deploykit", Repo: "deploy", Token: "tok", Ref: ref}
	}
	if err := ci("").Check(t.Context(), dep); err != nil {
		t.Errorf("success: %v", err)
	}
	wantBlock(t, ci("failure").Check(t.Context(), dep), "CI failed for deploykit/deploy@failure: ci/test (failure: 3 tests failed), lint (error) (2 of 3)")
	wantBlock(t, ci("missing").Check(t.Context(), dep), "CI status of deploykit/deploy@missing: 404 Not Found (no such repository or commit, or the token cannot see it)", "No commit found for SHA: missing")
	wantBlock(t, ci("badtoken").Check(t.Context(), dep), "CI status of deploykit/deploy@badtoken: 401 Unauthorized")
	wantBlock(t, ci("weird").Check(t.Context(), dep), `unknown state "cancelled"`)
	wantBlock(t, ci("broken").Check(t.Context(), dep), "CI status of deploykit/deploy@broken: decoding GET "+srv.URL)
	c := ci("")
	if c.Name() != "ci" {
		t.Errorf("Name() = %q", c.Name())
	}
	if diff := cmp.Diff([]deploy.Item{deploy.ItemTestsPassing}, c.ChecklistItems()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

// TestCIWaits checks the retries in virtual time, with an in-memory
// transport.
func TestCIWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := memClient(github(t, ciRefs))
		ci := func(ref string) *gate.CI {
			return &gate.CI{BaseURL: "https://github.example.com/api/v3", Owner: "deploykit", Repo: "deploy", Token: "tok", Ref: ref, Client: client, Poll: 2 * time.Minute}
		}
		next := time.Now().Add(2 * time.Minute)
		wantRetry(t, ci("pending").Check(t.Context(), dep), next, "CI pending for deploykit/deploy@pending: ci/test (pending: running), ci/e2e (pending) (2 of 3)")
		wantRetry(t, ci("none").Check(t.Context(), dep), next, "CI pending for deploykit/deploy@none: no status reported yet")
		wantRetry(t, ci("busy").Check(t.Context(), dep), next, "CI status of deploykit/deploy@busy unavailable: 502 Bad Gateway")
		wantRetry(t, ci("limited").Check(t.Context(), dep), next, "CI status of deploykit/deploy@limited unavailable: 403 Forbidden")

		// A status API that hangs is retried after the timeout, at the next poll.
		hang := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		c := &gate.CI{BaseURL: "https://github.example.com/api/v3", Owner: "deploykit", Repo: "deploy", Client: hang, Timeout: 10 * time.Second}
		start := time.Now()
		err := c.Check(t.Context(), dep)
		wantRetry(t, err, start.Add(10*time.Second+gate.DefaultPoll), "CI status of deploykit/deploy@0123456789ab unavailable: GET https://github.example.com/api/v3/repos/deploykit/deploy/commits/0123456789abcdef0123456789abcdef01234567/status: context deadline exceeded")
	})
}

func TestCIValidate(t *testing.T) {
	for _, c := range []struct {
		ci   gate.CI
		want string
	}{
		{gate.CI{Repo: "deploy"}, "gate.CI: Owner is empty"},
		{gate.CI{Owner: "deploykit"}, "Repo is empty"},
		{gate.CI{Owner: "deploykit", Repo: "deploykit/deploy"}, `Repo "deploykit/deploy" contains a slash or a space`},
		{gate.CI{Owner: "deploykit", Repo: "deploy", BaseURL: "api.github.com"}, `BaseURL "api.github.com" is not an http or https URL`},
		{gate.CI{Owner: "deploykit", Repo: "deploy", Poll: -time.Minute}, "Poll -1m0s is negative"},
		{gate.CI{Owner: "deploykit", Repo: "deploy", Timeout: -time.Second}, "Timeout -1s is negative"},
	} {
		if err := c.ci.Validate(); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want ErrInvalid naming %q", err, c.want)
		}
		wantBlock(t, c.ci.Check(t.Context(), dep), c.want)
	}
	noCommit := &deploy.Deployment{Release: deploy.Release{Service: "checkout", Version: "v2"}}
	wantBlock(t, (&gate.CI{Owner: "deploykit", Repo: "deploy"}).Check(t.Context(), noCommit), "the release has no Commit and Ref is empty")
}
