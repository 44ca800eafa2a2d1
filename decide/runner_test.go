package decide_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// With the real engine, in virtual time: the page's JSON decisions reach
// the Runner, which carries them out; what the Runner refuses is refused.

const (
	alice = "alice-token-0123456789"
	bob   = "bob-token-0123456789ab"
)

// canary pauses for alice's approval before 10 %, then until promoted at
// 50 %, then goes to 100 %.
type canary struct{}

func (canary) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	nop := func(context.Context, *deploy.Deployment) error { return nil }
	return []deploy.Step{
		{Name: "10%", Exposure: 0.1, Bake: time.Minute, Approval: true, Approvers: []string{"alice"}, Apply: nop},
		{Name: "50%", Exposure: 0.5, Bake: time.Minute, Pause: &deploy.Pause{}, Apply: nop},
		{Name: "100%", Exposure: 1, Bake: time.Minute, Apply: nop},
	}, nil
}

func (canary) Rollback(ctx context.Context, d *deploy.Deployment) error { return nil }

type env struct {
	t     *testing.T
	store *state.Memory
	page  *decide.Handler
	id    string
	ran   chan error
	stop  context.CancelFunc
}

// end cancels the run, if it is still going, and waits for it to end.
func (e *env) end() error {
	e.stop()
	err := <-e.ran
	e.ran <- err
	return err
}

// start starts a release of canary and drives it in the background.
func start(t *testing.T) *env {
	store := state.NewMemory()
	runner, err := deploy.NewRunner(canary{},
		deploy.WithStore(store),
		deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "a test, at any hour"),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "watch", Duration: 10 * time.Minute, Interval: time.Minute}}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := decide.Tokens(map[string]string{alice: "alice", bob: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := decide.New(runner, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, page: page, ran: make(chan error, 1)}
	e.id, err = runner.Start(t.Context(), deploy.Release{Service: "shop", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go func() { _, err := runner.Resume(ctx, e.id); e.ran <- err }()
	t.Cleanup(func() { e.end() })
	synctest.Wait()
	return e
}

func (e *env) rec() *state.Record {
	rec, err := e.store.Load(context.Background(), e.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// post sends a JSON decision as token's holder and returns the answer.
func (e *env) post(token, action, body string, hdr ...string) (int, decide.Outcome) {
	r := httptest.NewRequest("POST", "/api/releases/"+e.id+"/"+action, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.page.ServeHTTP(w, r)
	var o decide.Outcome
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
		e.t.Fatalf("%s: %d %s", action, w.Code, w.Body)
	}
	return w.Code, o
}

// waits lets virtual time pass, up to an hour, until the release waits
// for kind at step.
func (e *env) waits(kind state.WaitKind, step int) {
	e.t.Helper()
	for range 360 {
		synctest.Wait()
		if w := e.rec().Waiting; w != nil && w.Kind == kind && w.Step == step {
			return
		}
		time.Sleep(10 * time.Second)
	}
	rec := e.rec()
	e.t.Fatalf("after an hour the release waits for %+v in %s (%s), want %s at step %d", rec.Waiting, rec.Phase, rec.Status, kind, step)
}

// ends lets virtual time pass, up to a day, until the release ends.
func (e *env) ends() *state.Record {
	e.t.Helper()
	for range 24 * 60 {
		synctest.Wait()
		if rec := e.rec(); rec.Status.Final() {
			return rec
		}
		time.Sleep(time.Minute)
	}
	rec := e.rec()
	e.t.Fatalf("after a day the release is %s in %s, waiting for %+v", rec.Status, rec.Phase, rec.Waiting)
	return nil
}

func decisions(rec *state.Record) string {
	var s []string
	for _, d := range rec.Decisions {
		s = append(s, string(d.Kind)+" by "+d.By)
	}
	return strings.Join(s, ", ")
}

func TestTheRunnerCarriesOutThePagesDecisionsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t)
		e.waits(state.WaitApproval, 0)

		// Bob may use the page, but not approve this step.
		if code, o := e.post(bob, "approve", `{"step":0}`); code != http.StatusForbidden || !strings.Contains(o.Message, "approvers are alice") {
			t.Errorf("bob approves: %d %q, want 403 naming the approvers", code, o.Message)
		}
		// Alice approves; the same decision sent again, with or without its
		// key, has no second effect.
		if code, o := e.post(alice, "approve", `{"step":0,"reason":"change reviewed"}`, "Idempotency-Key", "k1"); code != http.StatusOK || !o.OK {
			t.Fatalf("alice approves: %d %+v", code, o)
		}
		if code, o := e.post(alice, "approve", `{"step":0,"reason":"change reviewed"}`, "Idempotency-Key", "k1"); code != http.StatusOK || !o.Repeated {
			t.Errorf("the same key again: %d %+v, want 200 repeated", code, o)
		}
		if code, _ := e.post(alice, "approve", `{"step":0,"reason":"change reviewed"}`); code != http.StatusOK && code != http.StatusConflict {
			t.Errorf("the same approval again: %d, want 200 (a no-op) or 409 (moved on)", code)
		}
		e.waits(state.WaitPause, 1)
		if got := decisions(e.rec()); got != "approve by alice" {
			t.Errorf("decisions after approving: %s", got)
		}

		// A pause does not take approvals; a promotion moves it on.
		if code, _ := e.post(alice, "approve", `{"step":1}`); code != http.StatusConflict {
			t.Errorf("approve a pause: %d, want 409", code)
		}
		if code, o := e.post(bob, "promote", `{"reason":"metrics fine"}`); code != http.StatusOK || o.Step != 1 {
			t.Fatalf("bob promotes: %d %+v", code, o)
		}
		rec := e.ends()
		if err := e.end(); err != nil {
			t.Fatalf("the release ended with %v", err)
		}
		if rec.Status != state.Succeeded || decisions(rec) != "approve by alice, promote by bob" {
			t.Errorf("at the end: %s, decisions %s", rec.Status, decisions(rec))
		}
		// The report the page links to says who decided.
		r := httptest.NewRequest("GET", "/releases/"+e.id+"/report.md", nil)
		r.Header.Set("Authorization", "Bearer "+alice)
		w := httptest.NewRecorder()
		e.page.ServeHTTP(w, r)
		if md := w.Body.String(); w.Code != http.StatusOK || !strings.Contains(md, "bob") || !strings.Contains(md, "metrics fine") {
			t.Errorf("report.md: %d\n%s", w.Code, md)
		}
	})
}

func TestAbortThenRetryFromThePage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t)
		e.post(alice, "approve", `{"step":0}`)
		e.waits(state.WaitPause, 1)

		if code, o := e.post(bob, "abort", `{"step":1,"reason":"p99 looks odd"}`); code != http.StatusOK || !o.OK {
			t.Fatalf("abort: %d %+v", code, o)
		}
		e.waits(state.WaitAborted, 1)
		if rec := e.rec(); rec.Exposure != 0 {
			t.Errorf("aborted, exposure %v, want 0", rec.Exposure)
		}
		if code, _ := e.post(bob, "promote", `{}`); code != http.StatusConflict {
			t.Errorf("promote an aborted release: %d, want 409", code)
		}
		if code, o := e.post(bob, "retry", `{}`); code != http.StatusOK || !o.OK {
			t.Fatalf("retry: %d %+v", code, o)
		}
		synctest.Wait()
		// The retry starts from the first step, which asks for its
		// approval again.
		e.waits(state.WaitApproval, 0)
		if rec := e.rec(); rec.Attempt != 1 || decisions(rec) != "approve by alice, abort by bob, retry by bob" {
			t.Errorf("after the retry: attempt %d, decisions %s", rec.Attempt, decisions(rec))
		}
	})
}

// A rollback asked for while the release waits for the approval of its
// first step (nothing deployed) ends it, and the release no longer waits.
func TestARollbackWhileWaitingForAnApprovalEndsTheRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t)
		e.waits(state.WaitApproval, 0)
		if code, o := e.post(alice, "rollback", `{"reason":"not today"}`); code != http.StatusOK || !o.OK {
			t.Fatalf("rollback: %d %+v", code, o)
		}
		if rec := e.ends(); rec.Status != state.Aborted {
			t.Errorf("after the rollback the release is %s", rec.Status)
		}
	})
}
