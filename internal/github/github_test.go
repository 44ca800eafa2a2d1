package github

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCallSendsGitHubHeadersAndDecodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header
		if h.Get("Accept") != "application/vnd.github+json" || h.Get("X-GitHub-Api-Version") != apiVersion ||
			h.Get("Authorization") != "Bearer tok" || h.Get("User-Agent") == "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", h)
		}
		fmt.Fprint(w, `{"id": 7}`)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/api/v3/", Token: "tok"}
	var out struct{ ID int }
	if err := c.Call(t.Context(), http.MethodPost, "/repos/o/r/deployments", map[string]string{"ref": "main"}, &out); err != nil || out.ID != 7 {
		t.Errorf("Call = %v, id %d; want id 7", err, out.ID)
	}
}

func TestPagesFollowsNextLinksOnTheSameHostOnly(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		switch page {
		case 0:
			w.Header().Set("Link", `<`+srv.URL+`/items?page=2>; rel="next", <`+srv.URL+`/items?page=3>; rel="last"`)
		case 2:
			w.Header().Set("Link", `<https://elsewhere.example/items?page=3>; rel="next"`)
		default:
			t.Errorf("page %d requested", page)
		}
		fmt.Fprintf(w, "[%d]", max(page, 1))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: "tok"}
	var got []string
	err := c.Pages(t.Context(), "/items", 10, func(b []byte) (bool, error) {
		got = append(got, string(b))
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"[1]", "[2]"}, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	got = nil
	c.Pages(t.Context(), "/items", 10, func(b []byte) (bool, error) { got = append(got, string(b)); return false, nil })
	if len(got) != 1 {
		t.Errorf("%d pages after the callback said stop, want 1", len(got))
	}
}

func TestRateLimitsAreTemporaryWithTheirWait(t *testing.T) {
	reset := time.Now().Add(90 * time.Second).Unix()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/primary":
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
			http.Error(w, `{"message":"API rate limit exceeded"}`, http.StatusForbidden)
		case "/secondary":
			w.Header().Set("Retry-After", "60")
			http.Error(w, `{"message":"secondary rate limit"}`, http.StatusForbidden)
		case "/busy":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			http.Error(w, `{"message":"Bad credentials tok"}`, http.StatusForbidden)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: "tok-secret"}
	for _, tc := range []struct {
		path           string
		temporary      bool
		minWait, maxWt time.Duration
	}{
		{"/primary", true, 80 * time.Second, 91 * time.Second},
		{"/secondary", true, time.Minute, time.Minute},
		{"/busy", true, 0, 0},
		{"/forbidden", false, 0, 0},
	} {
		_, err := c.Get(t.Context(), tc.path)
		var e *Error
		if !errors.As(err, &e) || e.Temporary() != tc.temporary || e.RateLimited != tc.temporary || e.Wait < tc.minWait || e.Wait > tc.maxWt {
			t.Errorf("GET %s: %#v, want temporary %v, wait %v to %v", tc.path, err, tc.temporary, tc.minWait, tc.maxWt)
		}
	}
}

func TestErrorsAreRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad credentials "+r.Header.Get("Authorization")+" at "+r.URL.String(), http.StatusUnauthorized)
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/api?key=QUERYSECRET", Token: "TOKENSECRET"}
	_, err := c.Get(t.Context(), "/x")
	var e *Error
	if !errors.As(err, &e) || e.Temporary() {
		t.Fatalf("Get = %v, want a final *Error", err)
	}
	for _, s := range []string{err.Error(), e.Body(4096)} {
		if strings.Contains(s, "TOKENSECRET") || strings.Contains(s, "QUERYSECRET") {
			t.Errorf("a secret shows: %s", s)
		}
	}
	c.BaseURL = "http://127.0.0.1:1/?key=QUERYSECRET"
	_, err = c.Get(t.Context(), "/x")
	if !errors.As(err, &e) || e.Err == nil || !e.Temporary() || strings.Contains(err.Error(), "QUERYSECRET") {
		t.Errorf("unreachable: %v, want a temporary *Error without the secret", err)
	}
}
