package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/deploykit/deploy/state"
)

// storeCheckTimeout bounds each check of [TestStore], so that a store that
// hangs fails the suite instead of the test binary's deadline.
const storeCheckTimeout = time.Minute

// storeRacers is how many goroutines race on one revision in the
// concurrency check of [TestStore].
const storeRacers = 16

// TestStore tests a [state.Store] implementation, like testing/fstest.TestFS
// tests a file system: it returns nil if the store behaves as the
// state.Store documentation says, or an error naming every check that
// failed.
//
// newStore is called once per check and must return an empty store that no
// other check uses; the suite never closes it. A store that needs cleaning
// up should be closed by the caller after TestStore returns.
//
// The checks cover Create (Rev 1, ErrExists, ErrActive, a new release
// once the old one is final or in another environment), Load (ErrNotFound,
// copies that share no memory with the store but for the history), Update
// (compare-and-swap on Rev with ErrConflict, fencing with ErrFenced,
// ErrNotFound, nothing stored on failure, ErrActive for a final record
// brought back to running while another release of its service runs),
// exactly one winner among goroutines racing on one Rev, the append-only
// history (ErrHistory for an Update that shortens it, entries appended over
// many Updates, appends by holders of one record that do not reach each
// other), a round trip of every Record field, and errors, not panics, for
// nil records. A store that implements [state.Lister] is checked to list
// by service, environment, status and ActiveOnly, with each release's Next,
// in pages of a stable cursor while records are created and finished
// between pages, without records set aside, and to refuse a bad Query with
// [state.ErrQuery]; for one that does not, those checks pass. A store that
// implements [state.Quarantiner] is checked to set
// records aside as that interface says; for one that does not, that check
// passes. Times are compared with time.Time.Equal and outbox events as JSON
// values, so a store may normalise both.
//
// Typical use, in a test of the store:
//
//	if err := deploytest.TestStore(func() (state.Store, error) { return mystore.New(t.TempDir()) }); err != nil {
//		t.Fatal(err)
//	}
func TestStore(newStore func() (state.Store, error)) error {
	checks := []struct {
		name string
		run  func(context.Context, state.Store) error
	}{
		{"Create", checkCreate},
		{"Create/ErrExists", checkCreateExists},
		{"Create/ErrActive", checkCreateActive},
		{"Create/AfterFinal", checkCreateAfterFinal},
		{"Load/ErrNotFound", checkLoadNotFound},
		{"Load/Copy", checkLoadCopy},
		{"Update", checkUpdate},
		{"Update/Replaces", checkUpdateReplaces},
		{"Update/ErrConflict", checkUpdateConflict},
		{"Update/ErrFenced", checkUpdateFenced},
		{"Update/ErrNotFound", checkUpdateNotFound},
		{"Update/Race", checkUpdateRace},
		{"Update/Reactivate", checkUpdateReactivate},
		{"Update/Moves", checkUpdateMoves},
		{"History/AppendOnly", checkHistoryAppendOnly},
		{"History/Appends", checkHistoryAppends},
		{"History/Shared", checkHistoryShared},
		{"Quarantine", checkQuarantine},
		{"List", checkList},
		{"List/Paging", checkListPaging},
		{"List/Query", checkListQuery},
		{"RoundTrip", checkRoundTrip},
		{"NilRecord", checkNilRecord},
	}
	var errs []error
	for _, c := range checks {
		s, err := newStore()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: newStore: %w", c.name, err))
			continue
		}
		if s == nil {
			errs = append(errs, fmt.Errorf("%s: newStore returned a nil store", c.name))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeCheckTimeout)
		err = runCheck(ctx, s, c.run)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("deploytest: store failed %d of %d checks:\n%w", len(errs), len(checks), errors.Join(errs...))
	}
	return nil
}

// runCheck runs check, turning a panic into an error.
func runCheck(ctx context.Context, s state.Store, check func(context.Context, state.Store) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return check(ctx, s)
}

// newRecord returns a running record with a few fields set.
func newRecord(id, service, env string) *state.Record {
	now := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	return &state.Record{
		ID:       id,
		Release:  state.Release{Service: service, Version: "v2", Environment: env, Labels: map[string]string{"team": "payments"}},
		Strategy: "canary",
		Phase:    "preflight",
		Status:   state.Running,
		Holder:   "runner-a",
		Token:    1,
		Baseline: map[string]state.Measurement{"error_rate": {Value: 0.001, Samples: 100}},
		Timeline: []state.Entry{{At: now, Phase: "preflight", Kind: "phase"}},
		Created:  now,
		Updated:  now,
	}
}

// wantErr checks that err is target.
func wantErr(call string, err, target error) error {
	if err == nil {
		return fmt.Errorf("%s succeeded, want %v", call, target)
	}
	if !errors.Is(err, target) {
		return fmt.Errorf("%s = %v, want an error that Is %v", call, err, target)
	}
	return nil
}

// wantStored loads id and compares it with want.
func wantStored(ctx context.Context, s state.Store, want *state.Record, when string) error {
	got, err := s.Load(ctx, want.ID)
	if err != nil {
		return fmt.Errorf("Load(%q) %s: %w", want.ID, when, err)
	}
	if d := diffRecords(want, got); d != "" {
		return fmt.Errorf("Load(%q) %s differs from what was stored: %s", want.ID, when, d)
	}
	return nil
}

func checkCreate(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	r.Rev = 42 // ignored: Create sets 1
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	if r.Rev != 1 {
		return fmt.Errorf("after Create, r.Rev = %d, want 1", r.Rev)
	}
	return wantStored(ctx, s, r, "after Create")
}

func checkCreateExists(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	// Another service, so that only the id collides.
	dup := newRecord("rel-1", "search", "staging")
	if err := wantErr("second Create with the same id", s.Create(ctx, dup), state.ErrExists); err != nil {
		return err
	}
	if dup.Rev != 0 {
		return fmt.Errorf("after a refused Create, r.Rev = %d, want it unchanged (0)", dup.Rev)
	}
	return wantStored(ctx, s, r, "after the refused Create")
}

func checkCreateActive(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	second := newRecord("rel-2", "checkout", "production")
	if err := wantErr("Create of a second running release of checkout/production", s.Create(ctx, second), state.ErrActive); err != nil {
		return err
	}
	if _, err := s.Load(ctx, "rel-2"); !errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("Load of the refused record = %v, want ErrNotFound", err)
	}
	other := newRecord("rel-3", "checkout", "staging")
	if err := s.Create(ctx, other); err != nil {
		return fmt.Errorf("Create of checkout/staging while checkout/production runs: %w", err)
	}
	svc := newRecord("rel-4", "search", "production")
	if err := s.Create(ctx, svc); err != nil {
		return fmt.Errorf("Create of search/production while checkout/production runs: %w", err)
	}
	return nil
}

func checkCreateAfterFinal(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	r.Status, r.Phase = state.Succeeded, "communicate"
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update to succeeded: %w", err)
	}
	next := newRecord("rel-2", "checkout", "production")
	if err := s.Create(ctx, next); err != nil {
		return fmt.Errorf("Create after the previous release succeeded: %w", err)
	}
	third := newRecord("rel-3", "checkout", "production")
	return wantErr("Create while rel-2 runs", s.Create(ctx, third), state.ErrActive)
}

func checkLoadNotFound(ctx context.Context, s state.Store) error {
	_, err := s.Load(ctx, "missing")
	return wantErr(`Load("missing")`, err, state.ErrNotFound)
}

// mutate changes every map, slice and pointer of r in place, but for the
// entries of the append-only history, which it appends to.
func mutate(r *state.Record) {
	r.Release.Labels["team"] = "changed"
	r.Release.Links["pr"] = "changed"
	r.Baseline["error_rate"] = state.Measurement{Value: 9}
	r.Last["error_rate"] = state.Measurement{Value: 9}
	r.Checklist["dashboards"] = state.Tick{Evidence: "changed"}
	r.Gates[0].Reason = "changed"
	r.Windows[0].Name = "changed"
	r.Timeline = append(r.Timeline, state.Entry{Detail: "appended"})
	r.Waivers[0].Reason = "changed"
	r.Outbox[0].Attempts = 99
	for _, b := range r.MonitorState {
		b[0] = '!'
	}
	r.RollbackSteps = append(r.RollbackSteps, state.Entry{Detail: "appended"})
	r.Trigger.Reason = "changed"
	*r.Trigger.Observed = 9
	*r.Trigger.Baseline = 9
	*r.Trigger.Threshold = 9
	r.RollbackRequest.Reason = "changed"
	*r.RollbackRequest.Observed = 9
}

func checkLoadCopy(ctx context.Context, s state.Store) error {
	r := FullRecord("rel-1")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	want := FullRecord("rel-1")
	want.Rev = 1
	mutate(r)
	if err := wantStored(ctx, s, want, "after the caller changed the created record"); err != nil {
		return err
	}
	got, err := s.Load(ctx, "rel-1")
	if err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	mutate(got)
	if err := wantStored(ctx, s, want, "after the caller changed a loaded record"); err != nil {
		return err
	}
	upd := FullRecord("rel-1")
	upd.Rev = 1
	if err := s.Update(ctx, upd); err != nil {
		return fmt.Errorf("Update: %w", err)
	}
	want.Rev = 2
	mutate(upd)
	return wantStored(ctx, s, want, "after the caller changed the updated record")
}

func checkUpdate(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	for i := 2; i <= 4; i++ {
		got, err := s.Load(ctx, "rel-1")
		if err != nil {
			return fmt.Errorf("Load: %w", err)
		}
		got.Stage = i
		got.Phase = "deploy"
		got.Timeline = append(got.Timeline, state.Entry{At: got.Created.Add(time.Duration(i) * time.Minute), Phase: "deploy", Kind: "step", Name: fmt.Sprint(i)})
		got.Token++ // a higher token is accepted
		if err := s.Update(ctx, got); err != nil {
			return fmt.Errorf("Update %d: %w", i-1, err)
		}
		if got.Rev != int64(i) {
			return fmt.Errorf("after Update %d, r.Rev = %d, want %d", i-1, got.Rev, i)
		}
		if err := wantStored(ctx, s, got, fmt.Sprintf("after Update %d", i-1)); err != nil {
			return err
		}
	}
	return nil
}

// checkUpdateReplaces: an Update replaces every field, also with maps that
// lost or changed keys, shorter slices and nil pointers, and back.
func checkUpdateReplaces(ctx context.Context, s state.Store) error {
	r := FullRecord("rel-1")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	lean := FullRecord("rel-1")
	lean.Rev = r.Rev
	lean.Release.Links, lean.Release.Labels = nil, map[string]string{"owner": "search"}
	lean.Gates, lean.Windows, lean.Waivers, lean.Outbox = lean.Gates[:1], nil, nil, nil
	lean.Baseline, lean.Last, lean.Checklist = nil, map[string]state.Measurement{"cpu": {Value: 0.5, Samples: 3}}, nil
	lean.MonitorState = map[string][]byte{"other": []byte("x")}
	lean.Trigger, lean.RollbackRequest = nil, nil
	if err := s.Update(ctx, lean); err != nil {
		return fmt.Errorf("Update to a leaner record: %w", err)
	}
	if err := wantStored(ctx, s, lean, "after an Update to a leaner record"); err != nil {
		return err
	}
	full := FullRecord("rel-1")
	full.Rev = lean.Rev
	if err := s.Update(ctx, full); err != nil {
		return fmt.Errorf("Update back to the full record: %w", err)
	}
	return wantStored(ctx, s, full, "after an Update back to the full record")
}

func checkUpdateConflict(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	stale, err := s.Load(ctx, "rel-1")
	if err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	r.Phase = "deploy"
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update: %w", err)
	}
	stale.Phase = "rollback"
	if err := wantErr("Update with stale Rev 1", s.Update(ctx, stale), state.ErrConflict); err != nil {
		return err
	}
	if stale.Rev != 1 {
		return fmt.Errorf("after a refused Update, r.Rev = %d, want it unchanged (1)", stale.Rev)
	}
	ahead := r.Clone()
	ahead.Rev = 7
	if err := wantErr("Update with Rev 7 ahead of the stored 2", s.Update(ctx, ahead), state.ErrConflict); err != nil {
		return err
	}
	return wantStored(ctx, s, r, "after refused Updates")
}

func checkUpdateFenced(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	old, err := s.Load(ctx, "rel-1")
	if err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	// A second runner takes the record over with a higher token.
	r.Holder, r.Token = "runner-b", 2
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update taking over with token 2: %w", err)
	}
	// The first runner reloads (fresh Rev) but keeps its old token.
	old.Rev = r.Rev
	old.Phase = "rollback"
	if err := wantErr("Update with token 1 below the stored 2", s.Update(ctx, old), state.ErrFenced); err != nil {
		return err
	}
	if err := wantStored(ctx, s, r, "after a fenced Update"); err != nil {
		return err
	}
	// Same token is allowed.
	r.Phase = "deploy"
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update with an equal token: %w", err)
	}
	return wantStored(ctx, s, r, "after an Update with an equal token")
}

func checkUpdateNotFound(ctx context.Context, s state.Store) error {
	r := newRecord("missing", "checkout", "production")
	r.Rev = 1
	if err := wantErr(`Update("missing")`, s.Update(ctx, r), state.ErrNotFound); err != nil {
		return err
	}
	_, err := s.Load(ctx, "missing")
	return wantErr(`Load("missing") after a refused Update`, err, state.ErrNotFound)
}

func checkUpdateRace(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	recs := make([]*state.Record, storeRacers)
	for i := range recs {
		got, err := s.Load(ctx, "rel-1")
		if err != nil {
			return fmt.Errorf("Load: %w", err)
		}
		got.Holder = fmt.Sprintf("racer-%d", i)
		recs[i] = got
	}
	errs := make([]error, storeRacers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, rec := range recs {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(ctx, rec)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			return fmt.Errorf("racers %d and %d both updated rev 1", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, state.ErrConflict):
			return fmt.Errorf("racer %d: Update = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		return fmt.Errorf("none of %d racers updated rev 1", storeRacers)
	}
	return wantStored(ctx, s, recs[winner], "after the race")
}

func checkNilRecord(ctx context.Context, s state.Store) error {
	if err := s.Create(ctx, nil); err == nil {
		return errors.New("Create(nil) succeeded, want an error")
	}
	if err := s.Update(ctx, nil); err == nil {
		return errors.New("Update(nil) succeeded, want an error")
	}
	return nil
}

func checkRoundTrip(ctx context.Context, s state.Store) error {
	r := FullRecord("rel-1")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	if err := wantStored(ctx, s, r, "after Create"); err != nil {
		return err
	}
	// Local times with monotonic readings must come back Equal too.
	now := time.Now()
	r.Updated, r.LeaseUntil = now, now.Add(time.Minute)
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update: %w", err)
	}
	return wantStored(ctx, s, r, "after Update")
}

// FullRecord returns a record with every field set to a value other than
// its zero value, and no NaN or infinity, for round-trip tests of stores.
// Its status is [state.Running]; Rev is 0.
func FullRecord(id string) *state.Record {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	f := func(v float64) *float64 { return &v }
	r := &state.Record{
		ID: id,
		Release: state.Release{
			Service:         "checkout",
			Version:         "v2.1.0",
			Environment:     "production",
			PreviousVersion: "v2.0.3",
			CommitTime:      at(-60),
			Commit:          "9f2c1e0",
			Description:     "faster tax lookup — \"quoted\", <tagged> & unicode ✓",
			Links:           map[string]string{"pr": "https://example.com/pr/1", "doc": "https://example.com/doc"},
			Labels:          map[string]string{"team": "payments", "tier": "1"},
		},
		Strategy:  "canary",
		Phase:     "verify",
		Status:    state.Running,
		Stage:     2,
		Step:      3,
		Applied:   true,
		Applying:  true,
		StepStart: at(10),
		BakeStart: at(11),
		Exposure:  0.25,
		Gates: []state.Gate{
			{Name: "window", Passed: false, Reason: "outside business hours", RetryAt: at(60), At: at(1)},
			{Name: "alerts", Passed: true, Evidence: "no alert firing", At: at(2)},
		},
		Baseline:     map[string]state.Measurement{"error_rate": {Value: 0.001, Samples: 1000}, "latency_p95": {Value: 0.2125, Samples: 1000}},
		Last:         map[string]state.Measurement{"error_rate": {Value: 1e-7, Samples: 12}},
		Counters:     state.Counters{Failures: 1, Inconclusive: 2, ConsecutiveErrors: 3, Judge: `{"sequential:error_rate":"AAAA"}`},
		MonitorState: map[string][]byte{"2:monitor.LogScan": []byte(`["<ts> ERROR payment declined for order <n>"]`)},
		Observed:     17,
		Windows:      []state.Window{{Name: "bake", Interval: 30 * time.Second, Start: at(11), End: at(21), Observations: 20}},
		Timeline:     []state.Entry{{At: at(0), Phase: "preflight", Kind: "phase", Outcome: state.OutcomeStarted, Name: "preflight", Stage: "canary", Exposure: 0.01, Detail: "started", Values: map[string]float64{"error_rate": 0.001}}},
		Checklist:    map[string]state.Tick{"dashboards": {Done: true, Evidence: "https://example.com/d", At: at(3)}},
		Waivers:      []state.Waiver{{Pitfall: "friday", Reason: "hotfix for an outage"}},
		Outbox: []state.Message{{
			ID: 4, Notifier: 1, Event: json.RawMessage(`{"kind":"started","n":[1,2.5,true,null]}`),
			Attempts: 2, NextAt: at(5), Delivered: true, LastError: "503 Service Unavailable",
			Queued: at(4), Refused: true, Expired: at(6),
		}},
		Undelivered:    []state.Message{{ID: 2, Notifier: 1, Event: json.RawMessage(`{"kind":"gate"}`), Attempts: 9, NextAt: at(7), Delivered: true, LastError: "404", Queued: at(1), Refused: true, Expired: at(61)}},
		Steps:          []string{"1%", "25%", "100%"},
		Memo:           map[string]string{"bluegreen.target/production": "green"},
		RollbackReason: "error rate above baseline",
		Trigger: &state.Trigger{
			Kind: "breach", Metric: "error_rate", Observed: f(0.08), Baseline: f(0.001), Reference: "control", Threshold: f(0.01),
			Samples: 400, Reason: "error rate 8% > 1%", Traces: []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, Stage: "canary", Step: "25%", At: at(30),
		},
		RollbackStart: at(31),
		RollbackSteps: []state.Entry{{At: at(32), Phase: "rollback", Kind: "rollback", Outcome: state.OutcomeDone, Name: "0%", Stage: "canary", Exposure: 1e21, Detail: "weight 0", Values: map[string]float64{"latency_p95": 0.2125}}},
		Outcome:       state.RolledBack,
		Delivered:     3,
		Error:         "deploy: rolled back",
		Holder:        "runner-a@host",
		Token:         5,
		LeaseUntil:    at(40),
		Next:          at(39),
		Created:       at(0),
		Updated:       at(33),
		Deadline:      at(24 * 60),
		Finished:      at(34),
	}
	req := *r.Trigger
	req.Observed, req.Baseline, req.Threshold = f(*req.Observed), f(*req.Baseline), f(*req.Threshold)
	req.Kind, req.Reason = "manual", "on-call: stop it"
	r.RollbackRequest = &req
	r.Waiting = &state.Wait{Kind: state.WaitApproval, Stage: "canary", Step: 3, StepName: "100%", Since: at(12), Until: at(90),
		Reason: "approval of step 100%", Approvers: []string{"sre-oncall", "alice"}, Analysis: "success-rate"}
	r.Decisions = []state.Decision{{Kind: state.DecisionPromote, Full: true, Stage: "canary", Step: 2, Attempt: 1, By: "bob",
		Reason: "dashboards green", At: at(13), Taken: at(14), Outcome: "promoted fully"}}
	r.Analyses = []state.AnalysisRun{{Name: "success-rate", Kind: state.AnalysisInline, Stage: "canary", Step: 2, StepName: "25%",
		Attempt: 1, Phase: state.AnalysisInconclusive, Start: at(11), End: at(13), Reason: "inconclusive", Accepted: true,
		Metrics: []state.MetricRun{{Name: "success-rate", Unit: "ratio", DryRun: true, Phase: state.AnalysisInconclusive, Count: 3,
			Successful: 1, Failed: 1, Inconclusive: 1, Errors: 2, ConsecutiveErrors: 1, ConsecutiveSuccesses: 1, Next: at(14),
			Measurements: []state.AnalysisMeasurement{{At: at(11), Phase: state.AnalysisSuccessful, Value: f(0.99), Reason: "ok"}, {At: at(12), Phase: state.AnalysisError, Reason: "no data"}},
			Reason:       "inconclusive 1 time"}}}}
	r.Attempt = 1
	r.Full = true
	r.RollbackFrom = 1
	return r
}

// diffRecords describes the first difference between want and got, or
// returns "" if they are equal. Times are compared with Equal and JSON
// payloads as decoded values.
func diffRecords(want, got *state.Record) string {
	return diff("Record", reflect.ValueOf(want).Elem(), reflect.ValueOf(got).Elem())
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func diff(path string, w, g reflect.Value) string {
	switch w.Type() {
	case timeType:
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) {
			return fmt.Sprintf("%s: got %s, want %s", path, gt.Format(time.RFC3339Nano), wt.Format(time.RFC3339Nano))
		}
		return ""
	case rawType:
		wb, gb := w.Bytes(), g.Bytes()
		if bytes.Equal(wb, gb) {
			return ""
		}
		var wv, gv any
		werr, gerr := json.Unmarshal(wb, &wv), json.Unmarshal(gb, &gv)
		if werr != nil || gerr != nil || !reflect.DeepEqual(wv, gv) {
			return fmt.Sprintf("%s: got %s, want %s", path, gb, wb)
		}
		return ""
	}
	switch w.Kind() {
	case reflect.Struct:
		for i := range w.NumField() {
			if d := diff(path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				return fmt.Sprintf("%s: got %s, want %s", path, nilness(g), nilness(w))
			}
			return ""
		}
		return diff("(*"+path+")", w.Elem(), g.Elem())
	case reflect.Slice:
		// A nil slice and an empty one are the same record.
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: got %d elements, want %d", path, g.Len(), w.Len())
		}
		for i := range w.Len() {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: got %d entries, want %d", path, g.Len(), w.Len())
		}
		for _, k := range w.MapKeys() {
			gv := g.MapIndex(k)
			p := fmt.Sprintf("%s[%q]", path, k.Interface())
			if !gv.IsValid() {
				return p + ": missing"
			}
			if d := diff(p, w.MapIndex(k), gv); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			return fmt.Sprintf("%s: got %#v, want %#v", path, g.Interface(), w.Interface())
		}
		return ""
	}
}

func nilness(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	return "non-nil"
}
