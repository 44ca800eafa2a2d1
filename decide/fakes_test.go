package decide

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// fakeStore is a Store of fixed records.
type fakeStore struct {
	mu   sync.Mutex
	recs map[string]*state.Record
}

func (s *fakeStore) Load(ctx context.Context, id string) (*state.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return nil, fmt.Errorf("load %s: %w", id, state.ErrNotFound)
	}
	return r.Clone(), nil
}

func (s *fakeStore) List(ctx context.Context, q state.Query) (state.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p state.Page
	for _, id := range slices.Sorted(func(y func(string) bool) {
		for id := range s.recs {
			if !y(id) {
				return
			}
		}
	}) {
		r := s.recs[id]
		if q.ActiveOnly && r.Status.Final() {
			continue
		}
		p.Releases = append(p.Releases, state.SummaryOf(r))
	}
	return p, nil
}

func (s *fakeStore) set(r *state.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.ID] = r
}

// call is one call the fake decider received.
type call struct {
	Action Action
	ID     string
	Step   int
	Full   bool
	D      deploy.Decision
}

// fakeDecider records its calls; each may be made to block, fail or
// panic, and to move the release on in the store.
type fakeDecider struct {
	mu    sync.Mutex
	calls []call
	store *fakeStore
	block chan struct{} // when set, calls wait for it (or their ctx)
	err   error
	panic bool
}

func (f *fakeDecider) do(ctx context.Context, c call) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	block, err, p := f.block, f.err, f.panic
	f.mu.Unlock()
	if p {
		panic("decider bug")
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	if f.store != nil {
		rec, _ := f.store.Load(ctx, c.ID)
		if rec != nil {
			rec.Timeline = append(rec.Timeline, state.Entry{At: time.Now(), Phase: rec.Phase, Kind: state.EntryGate, Outcome: state.OutcomeApproved, Name: "approval", Detail: string(c.Action) + " by " + c.D.By})
			rec.Step++
			rec.Waiting = nil
			f.store.set(rec)
		}
	}
	return nil
}

func (f *fakeDecider) Approve(ctx context.Context, id string, step int, d deploy.Decision) error {
	return f.do(ctx, call{Action: Approve, ID: id, Step: step, D: d})
}
func (f *fakeDecider) Promote(ctx context.Context, id string, full bool, d deploy.Decision) error {
	a := Promote
	if full {
		a = PromoteFull
	}
	return f.do(ctx, call{Action: a, ID: id, Full: full, D: d})
}
func (f *fakeDecider) Abort(ctx context.Context, id string, d deploy.Decision) error {
	return f.do(ctx, call{Action: Abort, ID: id, D: d})
}
func (f *fakeDecider) Retry(ctx context.Context, id string, d deploy.Decision) error {
	return f.do(ctx, call{Action: Retry, ID: id, D: d})
}
func (f *fakeDecider) Skip(ctx context.Context, id string, step int, d deploy.Decision) error {
	return f.do(ctx, call{Action: Skip, ID: id, Step: step, D: d})
}
func (f *fakeDecider) Rollback(ctx context.Context, id, reason string) (*deploy.Report, error) {
	return nil, f.do(ctx, call{Action: Rollback, ID: id, D: deploy.Decision{Reason: reason}})
}
func (f *fakeDecider) Report(ctx context.Context, id string) (*deploy.Report, error) {
	rec, err := f.store.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &deploy.Report{ID: id, Release: rec.Release, Status: rec.Status, Phase: rec.Phase, Timeline: rec.Timeline}, nil
}

func (f *fakeDecider) got() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
)

// waitingRecord is release id of shop, at the second of three steps,
// waiting for its approval.
func waitingRecord(id string) *state.Record {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return &state.Record{
		ID: id, Rev: 3, Status: state.Running, Phase: state.PhaseDeploy, Strategy: "strategy.Progressive",
		Release: state.Release{Service: "shop", Environment: "production", Version: "v2", PreviousVersion: "v1"},
		Step:    1, Steps: []string{"10%", "50%", "100%"}, Exposure: 0.1,
		Last:     map[string]state.Measurement{"error_rate": {Value: 0.002, Samples: 900}},
		Baseline: map[string]state.Measurement{"error_rate": {Value: 0.0021, Samples: 1200}},
		Timeline: []state.Entry{
			{At: t0, Phase: state.PhaseDeploy, Kind: state.EntryStep, Outcome: state.OutcomeApplied, Name: "10%", Exposure: 0.1},
			{At: t0.Add(10 * time.Minute), Phase: state.PhaseDeploy, Kind: state.EntryGate, Outcome: state.OutcomeWaiting, Name: "approval", Exposure: 0.1, Detail: "approval pending"},
		},
		Waiting: &state.Wait{Kind: state.WaitApproval, Step: 1, StepName: "50%", Since: t0.Add(10 * time.Minute)},
		Created: t0, Updated: t0.Add(10 * time.Minute),
	}
}

type fixture struct {
	h     *Handler
	store *fakeStore
	dec   *fakeDecider
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	store := &fakeStore{recs: map[string]*state.Record{}}
	store.set(waitingRecord("r1"))
	store.set(waitingRecord("r2"))
	done := waitingRecord("r3")
	done.Status, done.Phase = state.Succeeded, state.PhaseComplete
	store.set(done)
	dec := &fakeDecider{store: store}
	auth, err := Tokens(map[string]string{aliceToken: "alice", bobToken: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(dec, store, auth, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, store: store, dec: dec}
}

// do serves one request as the holder of token (none if "").
func (f *fixture) do(method, path, token string, body url.Values, hdr ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

var formRE = regexp.MustCompile(`(?s)<form method="post" action="/releases/([^/"]+)/([a-z-]+)">\s*<input type="hidden" name="step" value="(\d+)">\s*<input type="hidden" name="token" value="([^"]+)">`)

// form is a decision form as the release's page offers it.
type form struct{ id, action, step, token string }

// forms returns the decision forms the page of release id shows token's holder.
func (f *fixture) forms(t *testing.T, id, token string) map[string]form {
	t.Helper()
	w := f.do("GET", "/releases/"+id, token, nil)
	if w.Code != 200 {
		t.Fatalf("GET /releases/%s: %d %s", id, w.Code, w.Body)
	}
	m := map[string]form{}
	for _, g := range formRE.FindAllStringSubmatch(w.Body.String(), -1) {
		m[g[2]] = form{g[1], g[2], g[3], g[4]}
	}
	return m
}

func (f *fixture) post(fm form, token string, hdr ...string) *httptest.ResponseRecorder {
	return f.do("POST", "/releases/"+fm.id+"/"+fm.action, token, url.Values{"step": {fm.step}, "token": {fm.token}}, hdr...)
}
