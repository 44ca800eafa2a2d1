package gate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/github"
	"github.com/deploykit/deploy/internal/redact"
)

// DefaultGitHubAPI is the base address of the GitHub REST API, used when
// [CI.BaseURL] is empty.
const DefaultGitHubAPI = "https://api.github.com"

// CI checks "All tests passing in CI" with GitHub's combined commit status:
// it gets {BaseURL}/repos/{Owner}/{Repo}/commits/{ref}/status, where ref is
// the release's Commit. "success" passes and ticks deploy.ItemTestsPassing;
// "pending" asks to be checked again after Poll (deploy.RetryAt);
// "failure" and "error" block, naming the failing contexts. A server that
// cannot be reached, times out, is rate-limited or answers 5xx asks to be
// checked again too, after Poll or when GitHub's rate limit resets, so the
// runner's gate deadline bounds an outage; other answers (401, 404) block.
// Statuses over several pages are all read (up to 300).
//
// The combined status covers commit statuses, not GitHub Actions check runs;
// a repository with no status reports "pending", which waits.
type CI struct {
	// Owner and Repo name the repository ("deploykit", "deploy"). Required.
	Owner, Repo string
	// Token is sent as a bearer token; empty sends none (public repositories).
	Token string
	// BaseURL is the API's address; empty means DefaultGitHubAPI. For
	// GitHub Enterprise Server it is "https://HOST/api/v3".
	BaseURL string
	// Ref is the commit, branch or tag to check; empty means the release's
	// Commit.
	Ref string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Poll is how soon a pending status is checked again; 0 means DefaultPoll.
	Poll time.Duration
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
}

var (
	_ deploy.Gate        = (*CI)(nil)
	_ deploy.Checklister = (*CI)(nil)
)

// Name returns "ci".
func (c *CI) Name() string { return "ci" }

// ChecklistItems returns deploy.ItemTestsPassing.
func (c *CI) ChecklistItems() []deploy.Item { return []deploy.Item{deploy.ItemTestsPassing} }

// Validate reports a missing Owner or Repo, or one with a slash, a bad
// BaseURL and negative durations.
func (c *CI) Validate() error {
	var p problems
	for _, f := range []struct{ name, v string }{{"Owner", c.Owner}, {"Repo", c.Repo}} {
		switch {
		case f.v == "":
			p.add("%s is empty", f.name)
		case strings.ContainsAny(f.v, "/ "):
			p.add("%s %q contains a slash or a space", f.name, f.v)
		}
	}
	checkURL(&p, "BaseURL", c.BaseURL, false)
	if c.Poll < 0 {
		p.add("Poll %v is negative", c.Poll)
	}
	if c.Timeout < 0 {
		p.add("Timeout %v is negative", c.Timeout)
	}
	return p.err("CI")
}

// combined is the part of GitHub's combined status the gate reads.
type combined struct {
	State    string `json:"state"`
	Statuses []struct {
		State       string `json:"state"`
		Context     string `json:"context"`
		Description string `json:"description"`
		TargetURL   string `json:"target_url"`
	} `json:"statuses"`
	TotalCount int `json:"total_count"`
}

// Check reads the combined status of the release's commit.
func (c *CI) Check(ctx context.Context, d *deploy.Deployment) error {
	return redact.Error(c.check(ctx, d), c.api().Secrets()...)
}

// api is the GitHub client of the gate's settings.
func (c *CI) api() *github.Client {
	return &github.Client{BaseURL: cmp.Or(c.BaseURL, DefaultGitHubAPI), Token: c.Token, HTTP: c.Client,
		Timeout: cmp.Or(c.Timeout, DefaultTimeout)}
}

// maxStatusPages bounds the pages of statuses read (30 statuses a page).
const maxStatusPages = 10

func (c *CI) check(ctx context.Context, d *deploy.Deployment) error {
	if err := c.Validate(); err != nil {
		return err
	}
	ref := cmp.Or(c.Ref, d.Release.Commit)
	if ref == "" {
		return fmt.Errorf("%w: gate.CI: the release has no Commit and Ref is empty: nothing to check", deploy.ErrInvalid)
	}
	api := c.api()
	repo := c.Owner + "/" + c.Repo
	retry := func(wait time.Duration, format string, args ...any) error {
		at := time.Now().Add(max(cmp.Or(c.Poll, DefaultPoll), wait))
		return deploy.RetryAt(at, redact.Text(fmt.Sprintf(format, args...), api.Secrets()...))
	}
	path := "/repos/" + url.PathEscape(c.Owner) + "/" + url.PathEscape(c.Repo) + "/commits/" + url.PathEscape(ref) + "/status"

	var st combined
	err := api.Pages(ctx, path, maxStatusPages, func(b []byte) (bool, error) {
		var page combined
		if err := json.Unmarshal(b, &page); err != nil {
			return false, fmt.Errorf("CI status of %s@%s: decoding GET %s: %w", repo, short(ref), redact.URL(api.URL(path)), err)
		}
		statuses := append(st.Statuses, page.Statuses...)
		st, st.Statuses = page, statuses
		return len(st.Statuses) < st.TotalCount, nil
	})
	var ge *github.Error
	switch {
	case err == nil:
	case !errors.As(err, &ge):
		return err
	case ge.Err != nil:
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return retry(0, "CI status of %s@%s unavailable: %v", repo, short(ref), ge)
	case ge.Temporary():
		return retry(ge.Wait, "CI status of %s@%s unavailable: %s: %s", repo, short(ref), ge.Status, ge.Body(maxBody))
	case ge.StatusCode == http.StatusNotFound:
		return fmt.Errorf("CI status of %s@%s: %s (no such repository or commit, or the token cannot see it): %s", repo, short(ref), ge.Status, ge.Body(maxBody))
	default:
		return fmt.Errorf("CI status of %s@%s: %s: %s", repo, short(ref), ge.Status, ge.Body(maxBody))
	}
	switch st.State {
	case "success":
		deploy.Evidence(ctx, "CI success for %s@%s: %s", repo, short(ref), green(st))
		return nil
	case "pending":
		if len(st.Statuses) == 0 {
			return retry(0, "CI pending for %s@%s: no status reported yet", repo, short(ref))
		}
		return retry(0, "CI pending for %s@%s: %s", repo, short(ref), contexts(st, "pending"))
	case "failure", "error":
		return fmt.Errorf("CI failed for %s@%s: %s", repo, short(ref), contexts(st, "failure", "error"))
	default:
		return fmt.Errorf("CI status of %s@%s: unknown state %q", repo, short(ref), redact.Clip(st.State, 40))
	}
}

// contexts lists the statuses in one of states, as "ci/test (failure: 3
// tests failed)", and how many of all they are.
func contexts(st combined, states ...string) string {
	var out []string
	for _, s := range st.Statuses {
		for _, want := range states {
			if s.State != want {
				continue
			}
			desc := s.State
			if s.Description != "" {
				desc += ": " + printable(s.Description, 200)
			}
			out = append(out, fmt.Sprintf("%s (%s)", printable(s.Context, 100), desc))
		}
	}
	if len(out) == 0 {
		return "no context says which"
	}
	return fmt.Sprintf("%s (%d of %d)", strings.Join(out, ", "), len(out), len(st.Statuses))
}

// green lists the contexts of a successful combined status: "2 of 2
// contexts green: ci/test, lint".
func green(st combined) string {
	var names []string
	for _, s := range st.Statuses {
		if s.State == "success" {
			names = append(names, printable(s.Context, 100))
		}
	}
	if len(names) == 0 {
		return "no status contexts"
	}
	return fmt.Sprintf("%d of %d contexts green: %s", len(names), len(st.Statuses), strings.Join(names, ", "))
}

// short abbreviates a full commit hash to 12 characters.
func short(ref string) string {
	if len(ref) == 40 && strings.Trim(ref, "0123456789abcdef") == "" {
		return ref[:12]
	}
	return ref
}
