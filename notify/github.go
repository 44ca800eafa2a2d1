package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/github"
	"github.com/deploykit/deploy/internal/redact"
)

// GitHub records the release as a GitHub deployment with deployment
// statuses, so that the pull request, the commit and the repository's
// environments page show where the release is; optionally it comments the
// report on the issues and pull requests linked from the release.
//
// On the first event of a release it creates a deployment (POST
// /repos/{owner}/{repo}/deployments) for ref Release.Commit, or
// Release.Version if Commit is empty (the ref must exist in the
// repository), in the release's environment, with auto_merge false, no
// required contexts, and the payload {"deployment_id": Event.DeploymentID,
// "service", "version"}. The GitHub deployment id is kept in memory; after a
// restart it is recovered by listing the deployments for that ref and
// environment (newest first, up to 1,000, page by page) and matching the
// payload's deployment_id, so a resumed release updates the same
// deployment. GitHub's rate limits are read from the answer: a 429, or a 403
// with no requests left, is a temporary *HTTPError whose RetryAfter is its
// Retry-After or the time until the limit resets.
//
// Then it posts a deployment status for each event that moves the release:
//
//	started, step            in_progress
//	gate waiting             queued
//	gate blocked             error
//	rollback                 in_progress ("rolling back: …")
//	rollback failed (urgent) error
//	finished                 success if succeeded, error if the rollback
//	                         failed or a gate blocked, failure otherwise
//
// Phase and observation events post nothing. Each status carries a
// description of at most 140 characters, log_url from the link "log" and
// environment_url from the link "environment" when the release has them.
//
// With CommentOn set, the finished event's Markdown report is posted as a
// comment on each listed link that is a GitHub issue or pull request, such
// as "https://github.com/acme/checkout/issues/12".
//
// An error (a response other than 2xx is an *HTTPError) means the event
// was not fully recorded; the runner retries it, and GitHub skips the
// steps already done for that event. GitHub implements deploy.Checklister:
// it ticks "Update issue/ticket status". A GitHub is safe for concurrent use;
// do not change its fields while it is in use.
type GitHub struct {
	// Repository is "owner/name".
	Repository string
	// Token is a token allowed to write deployments (and issues, with
	// CommentOn), sent as a bearer token.
	Token string
	// BaseURL is the REST API root; empty means "https://api.github.com".
	// For GitHub Enterprise Server use "https://HOST/api/v3".
	BaseURL string
	// Environment overrides the release's environment as the GitHub
	// environment name.
	Environment string
	// CommentOn names release links (such as "ticket", "pr") on whose GitHub
	// issue or pull request the report is commented when the release ends.
	// A link counts when its host is BaseURL's host ("github.com" for the
	// default API, your server's for GitHub Enterprise) and its path is
	// /OWNER/REPO/issues/N or /OWNER/REPO/pull/N; other links, and names the
	// release has no link for, are skipped without an error.
	CommentOn []string
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a default client.
	Client *http.Client

	mu  sync.Mutex
	ids map[string]int64 // deploy.Event.DeploymentID → GitHub deployment id
	// done holds the steps of events already completed, so that a retry
	// after a partial failure does not repeat them (comments).
	done map[string]bool
}

var (
	_ deploy.Notifier    = (*GitHub)(nil)
	_ deploy.Checklister = (*GitHub)(nil)
)

// Name returns "github".
func (*GitHub) Name() string { return "github" }

// ChecklistItems returns deploy.ItemTicketUpdated.
func (*GitHub) ChecklistItems() []deploy.Item { return []deploy.Item{deploy.ItemTicketUpdated} }

var repoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// Validate reports the first bad field: a Repository not of the form
// "owner/name", an empty Token, a BaseURL that is not an absolute http or
// https URL, an empty CommentOn key, or a negative Timeout.
func (g *GitHub) Validate() error {
	if !repoRE.MatchString(g.Repository) {
		return fmt.Errorf(`notify: GitHub.Repository %q is not "owner/name"`, g.Repository)
	}
	if strings.TrimSpace(g.Token) == "" {
		return fmt.Errorf("notify: GitHub.Token is empty")
	}
	if g.BaseURL != "" {
		if err := checkURL(g.BaseURL); err != nil {
			return fmt.Errorf("notify: GitHub.BaseURL %q: %w", g.BaseURL, err)
		}
	}
	for i, k := range g.CommentOn {
		if k == "" {
			return fmt.Errorf("notify: GitHub.CommentOn[%d] is empty", i)
		}
	}
	if g.Timeout < 0 {
		return fmt.Errorf("notify: GitHub.Timeout %v is negative", g.Timeout)
	}
	return nil
}

// DeploymentState is the state of a GitHub deployment status.
type DeploymentState string

// Deployment status states used by GitHub.
const (
	StateQueued     DeploymentState = "queued"
	StateInProgress DeploymentState = "in_progress"
	StateSuccess    DeploymentState = "success"
	StateFailure    DeploymentState = "failure"
	StateError      DeploymentState = "error"
	StateInactive   DeploymentState = "inactive"
)

// StateOf returns the deployment status state GitHub posts for e, and false
// for events that post none (phases, observations).
func StateOf(e deploy.Event) (DeploymentState, bool) {
	switch e.Kind {
	case deploy.EventStarted, deploy.EventStep:
		return StateInProgress, true
	case deploy.EventGate:
		if strings.HasPrefix(e.Message, "waiting") {
			return StateQueued, true
		}
		return StateError, true
	case deploy.EventRollback:
		if e.Urgent {
			return StateError, true
		}
		return StateInProgress, true
	case deploy.EventFinished:
		switch e.Status {
		case deploy.Succeeded:
			return StateSuccess, true
		case deploy.RollbackFailed, deploy.Blocked:
			return StateError, true
		default:
			return StateFailure, true
		}
	}
	return "", false
}

// Notify implements deploy.Notifier.
func (g *GitHub) Notify(ctx context.Context, e deploy.Event) error {
	if err := g.Validate(); err != nil {
		return err
	}
	st, ok := StateOf(e)
	if !ok {
		return nil
	}
	id, err := g.deployment(ctx, e)
	if err != nil {
		return err
	}
	key := func(step string) string {
		return fmt.Sprintf("%s/%s/%d/%s", e.DeploymentID, e.Kind, e.At.UnixNano(), step)
	}
	if !g.isDone(key("status")) {
		status := map[string]any{
			"state":         st,
			"description":   clip(e.Message, 140),
			"environment":   g.env(e),
			"auto_inactive": true,
		}
		if u := e.Links["log"]; u != "" {
			status["log_url"] = u
		}
		if u := e.Links["environment"]; u != "" {
			status["environment_url"] = u
		}
		path := fmt.Sprintf("/repos/%s/deployments/%d/statuses", g.Repository, id)
		if err := g.call(ctx, http.MethodPost, path, status, nil); err != nil {
			return err
		}
		g.markDone(key("status"))
	}
	if e.Kind == deploy.EventFinished && e.Report != "" {
		if err := g.comment(ctx, e, key); err != nil {
			return err
		}
	}
	g.forget(e, key(""))
	return nil
}

// comment posts e's report on the issues and pull requests of CommentOn.
func (g *GitHub) comment(ctx context.Context, e deploy.Event, key func(string) string) error {
	for _, k := range g.CommentOn {
		issue, ok := g.issuePath(e.Links[k])
		if !ok || g.isDone(key("comment "+issue)) {
			continue
		}
		body := map[string]string{"body": clip(e.Report, 65000)}
		if err := g.call(ctx, http.MethodPost, issue+"/comments", body, nil); err != nil {
			return err
		}
		g.markDone(key("comment " + issue))
	}
	return nil
}

func (g *GitHub) env(e deploy.Event) string {
	if g.Environment != "" {
		return g.Environment
	}
	if e.Release.Environment != "" {
		return e.Release.Environment
	}
	return "production"
}

func ref(e deploy.Event) string {
	if e.Release.Commit != "" {
		return e.Release.Commit
	}
	return e.Release.Version
}

// maxListPages bounds the pages of deployments searched (100 a page).
const maxListPages = 10

type ghDeployment struct {
	ID      int64           `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// deployment returns the GitHub deployment id of e's release: remembered,
// recovered by listing, or created.
func (g *GitHub) deployment(ctx context.Context, e deploy.Event) (int64, error) {
	g.mu.Lock()
	id, ok := g.ids[e.DeploymentID]
	g.mu.Unlock()
	if ok {
		return id, nil
	}
	q := url.Values{"ref": {ref(e)}, "environment": {g.env(e)}, "task": {"deploy"}, "per_page": {"100"}}
	err := g.api().Pages(ctx, "/repos/"+g.Repository+"/deployments?"+q.Encode(), maxListPages, func(b []byte) (bool, error) {
		var list []ghDeployment
		if err := json.Unmarshal(b, &list); err != nil {
			return false, fmt.Errorf("listing deployments: decoding the answer: %w", err)
		}
		for _, d := range list {
			if payloadID(d.Payload) == e.DeploymentID {
				id = d.ID
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return 0, g.httpErr(err)
	}
	if id == 0 {
		req := map[string]any{
			"ref":                    ref(e),
			"task":                   "deploy",
			"environment":            g.env(e),
			"auto_merge":             false,
			"required_contexts":      []string{},
			"description":            clip(e.Release.Service+" "+e.Release.Version+descSuffix(e.Release.Description), 140),
			"production_environment": g.env(e) == "production",
			"payload": map[string]string{
				"deployment_id": e.DeploymentID,
				"service":       e.Release.Service,
				"version":       e.Release.Version,
			},
		}
		var d ghDeployment
		if err := g.call(ctx, http.MethodPost, "/repos/"+g.Repository+"/deployments", req, &d); err != nil {
			return 0, err
		}
		if d.ID == 0 {
			return 0, fmt.Errorf("notify: github: creating the deployment returned no id")
		}
		id = d.ID
	}
	g.mu.Lock()
	if g.ids == nil {
		g.ids = map[string]int64{}
	}
	g.ids[e.DeploymentID] = id
	g.mu.Unlock()
	return id, nil
}

func descSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

// payloadID returns the deployment_id of a deployment payload, which GitHub
// returns as an object, or as a string holding JSON.
func payloadID(raw json.RawMessage) string {
	var p struct {
		ID string `json:"deployment_id"`
	}
	if json.Unmarshal(raw, &p) == nil && p.ID != "" {
		return p.ID
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && json.Unmarshal([]byte(s), &p) == nil {
		return p.ID
	}
	return ""
}

var issueRE = regexp.MustCompile(`^/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/(?:issues|pull)/([0-9]+)/?$`)

// issuePath returns the API path of the issue or pull request link points
// to, if it is one on this GitHub: github.com for the default BaseURL, the
// BaseURL's host otherwise.
func (g *GitHub) issuePath(link string) (string, bool) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	host := "github.com"
	if g.BaseURL != "" {
		if b, err := url.Parse(g.BaseURL); err == nil && b.Host != "api.github.com" {
			host = b.Host
		}
	}
	if !strings.EqualFold(u.Host, host) && !strings.EqualFold(u.Host, "www."+host) {
		return "", false
	}
	m := issueRE.FindStringSubmatch(u.Path)
	if m == nil {
		return "", false
	}
	n, _ := strconv.Atoi(m[3])
	return fmt.Sprintf("/repos/%s/%s/issues/%d", m[1], m[2], n), true
}

// forget drops what was kept about an event once it is delivered, and
// about the release once it has finished.
func (g *GitHub) forget(e deploy.Event, prefix string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.done {
		if strings.HasPrefix(k, prefix) {
			delete(g.done, k)
		}
	}
	if e.Kind == deploy.EventFinished {
		delete(g.ids, e.DeploymentID)
	}
}

func (g *GitHub) isDone(k string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done[k]
}

func (g *GitHub) markDone(k string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done == nil {
		g.done = map[string]bool{}
	}
	g.done[k] = true
}

// call sends a REST request with body as JSON and decodes the answer into
// out, if not nil, through the shared GitHub client. An answer other than
// 2xx is an *HTTPError; other errors name the host only.
func (g *GitHub) call(ctx context.Context, method, path string, body, out any) error {
	return g.httpErr(g.api().Call(ctx, method, path, body, out))
}

// api is the GitHub client of the notifier's settings.
func (g *GitHub) api() *github.Client {
	c := g.Client
	if c == nil {
		c = defaultClient
	}
	return &github.Client{BaseURL: g.BaseURL, Token: g.Token, HTTP: c, Timeout: timeout(g.Timeout)}
}

// httpErr turns the GitHub client's errors into the notifier's: an
// *HTTPError for an answer other than 2xx, a message naming the host for
// one that got no answer.
func (g *GitHub) httpErr(err error) error {
	var ge *github.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ge):
		return redact.Error(fmt.Errorf("notify: github: %w", err), g.api().Secrets()...)
	case ge.Err != nil:
		return redact.Error(fmt.Errorf("notify: github: %s %s: %w", ge.Method, ge.Host, ge.Err), g.api().Secrets()...)
	}
	return &HTTPError{Notifier: "github", Method: ge.Method, Host: ge.Host, StatusCode: ge.StatusCode,
		Body: ge.Body(200), Retry: ge.Wait}
}
