package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/deploykit/deploy/state"
)

// Runner carries releases through preflight, deploy, verify and communicate,
// rolling back on its own when a release hurts users. A Runner is safe for
// concurrent use; each release it runs is guarded by a lease in its store.
type Runner struct {
	strategy Strategy
	cfg      config
	holder   string

	storeOnce sync.Once
	storeErr  error

	// conditions are the policy's trigger conditions, for reports.
	conditions []string
	// judgesChecks is set when the policy has a CriticalChecks trigger.
	judgesChecks bool
	meterOnce    sync.Once
	releases     metric.Int64Counter

	// wakers are the loops of this Runner by release, told when a
	// decision was written (wake).
	wakeMu sync.Mutex
	wakers map[string]chan struct{}
}

func (r *Runner) store() (state.Store, error) {
	r.storeOnce.Do(func() {
		if r.cfg.store == nil {
			r.cfg.store, r.storeErr = state.NewFile(r.cfg.storeDir)
		}
	})
	return r.cfg.store, r.storeErr
}

// normalize fills defaults and validates a release.
func normalize(rel Release) (Release, error) {
	rel.Service = strings.TrimSpace(rel.Service)
	rel.Version = strings.TrimSpace(rel.Version)
	if rel.Service == "" {
		return rel, fmt.Errorf("%w: Release.Service is empty", ErrInvalid)
	}
	if rel.Version == "" {
		return rel, fmt.Errorf("%w: Release.Version is empty", ErrInvalid)
	}
	if rel.Environment == "" {
		rel.Environment = "production"
	}
	if err := rel.Validate(); err != nil {
		// Every field is checked before anything else, the same for every
		// store: names that reach file names, queries and URLs.
		return rel, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return rel, nil
}

func isProduction(env string) bool {
	e := strings.ToLower(env)
	return e == "production" || e == "prod" || strings.HasPrefix(e, "prod-") || strings.HasPrefix(e, "production-")
}

func (r *Runner) stages(rel Release) []Stage {
	if len(r.cfg.stages) == 0 {
		return []Stage{{Name: rel.Environment, Environment: rel.Environment}}
	}
	out := make([]Stage, len(r.cfg.stages))
	for i, s := range r.cfg.stages {
		if s.Environment == "" {
			s.Environment = rel.Environment
		}
		out[i] = s
	}
	return out
}

func nameOf(x any) string {
	if n, ok := x.(interface{ Name() string }); ok {
		if s := n.Name(); s != "" {
			return s
		}
	}
	t := fmt.Sprintf("%T", x)
	return strings.TrimPrefix(t, "*")
}

// Run carries rel through a whole release and returns its report. It
// validates the release and the plan, and checks the pitfall guards, before
// any side effect. It returns when the release has succeeded, rolled back,
// been blocked or aborted; the report is returned with the error. Errors
// that come before the release exists have no report: ErrInvalid, a pitfall
// guard's ErrBlocked, and ErrLocked when another release of the service and
// environment is active (the error then also matches state.ErrActive).
//
// Cancelling ctx during the deploy or verify phase rolls the release back
// (under a context that outlives ctx) and ends with ErrAborted.
func (r *Runner) Run(ctx context.Context, rel Release) (*Report, error) {
	rec, plans, err := r.create(ctx, rel)
	if err != nil {
		return nil, err
	}
	return r.loop(ctx, rec.ID, plans)
}

// Start validates rel and creates its record without running it, returning
// the record's id for Reconcile or Resume: Start then Resume is Run in two
// halves, for a caller that needs the id while the release runs (to show
// it, or to roll it back from elsewhere).
func (r *Runner) Start(ctx context.Context, rel Release) (string, error) {
	rec, _, err := r.create(ctx, rel)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

func (r *Runner) create(ctx context.Context, rel Release) (*state.Record, [][]Step, error) {
	rel, err := normalize(rel)
	if err != nil {
		return nil, nil, err
	}
	waivers, errs := r.guard(rel)
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	now := time.Now()
	d := &Deployment{Release: rel, Started: now}
	plans, err := r.plans(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	store, err := r.store()
	if err != nil {
		return nil, nil, err
	}
	rec := &state.Record{
		ID:       fmt.Sprintf("%s-%s-%s-%s", rel.Service, rel.Environment, now.UTC().Format("20060102T150405"), randomHex(6)),
		Release:  rel,
		Strategy: nameOf(r.strategy),
		Phase:    PhasePreflight,
		Status:   Running,
		Waivers:  waivers,
		Holder:   r.holder,
		Token:    firstToken(now),
		Created:  now,
		Updated:  now,
	}
	if r.cfg.gateDeadline != NoDeadline {
		rec.Deadline = now.Add(r.cfg.gateDeadline)
	}
	if len(d.Memo) > 0 {
		rec.Memo = d.Memo
	}
	rec.ID = strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == ' ' {
			return '_'
		}
		return c
	}, rec.ID)
	for _, w := range waivers {
		rec.Timeline = append(rec.Timeline, state.Entry{At: now, Phase: PhasePreflight, Kind: state.EntryWaiver, Name: w.Pitfall, Detail: w.Reason})
	}
	r.emit(rec, Event{Kind: EventStarted, Message: fmt.Sprintf("release of %s %s to %s started (%s)", rel.Service, rel.Version, rel.Environment, rec.Strategy)})
	if err := store.Create(ctx, rec); err != nil {
		if errors.Is(err, state.ErrActive) {
			return nil, nil, fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return nil, nil, fmt.Errorf("deploy: creating the release record: %w", err)
	}
	return rec, plans, nil
}

// Resume continues the release id after a stop or a crash: from the last
// completed step (steps are idempotent), or it finishes a rollback that was
// under way. On a release that is already over it delivers any undelivered
// notifications and returns the report.
//
// A runner that crashed still holds the release until its lease runs out
// (its next due action plus WithLeaseGrace, 2 minutes by default, plus the
// progress deadline before a step's Apply): until then Resume returns a
// *LockedError naming the holder and the time. Retry after it, or call
// Rollback, which takes over at once unless the record says an Apply or a
// rollback was under way, which it waits out first.
//
// Resume of a release that is over delivers what is pending for up to
// WithNotifyTimeout and returns; events a notifier still refuses stay
// pending (rep.Pending), for the next Resume or Reconcile, which returns
// when the next delivery is due.
func (r *Runner) Resume(ctx context.Context, id string) (*Report, error) {
	return r.loop(ctx, id, nil)
}

// Reconcile does whatever is due now for the release id (a gate re-check, an
// observation, the next step, a rollback, a notification), saves, and
// returns when the next action is due. A short-lived process — a CI job, a
// cron entry — can drive a day-long release by calling Reconcile when next
// comes: the lease Reconcile takes ends at next, so the next process, with
// another holder name, takes the release over then. rep is the report; once
// rep.Status is final and rep.Pending is 0 there is nothing left to do
// (with notifications pending, next is when the next delivery is due).
// Notifications are delivered before Reconcile returns, one attempt each.
func (r *Runner) Reconcile(ctx context.Context, id string) (next time.Time, rep *Report, err error) {
	if _, err := r.store(); err != nil {
		return time.Time{}, nil, err
	}
	lp := r.newLoop(ctx, nil)
	lp.oneShot = true
	defer lp.end()
	next, rec, err := r.reconcile(lp.ctx, id, lp)
	if rec == nil {
		return next, nil, err
	}
	if errors.Is(err, ErrLocked) && !rec.Status.Final() {
		// Another runner holds the release: touch nothing, deliver nothing
		// (its outbox is its own).
		return time.Time{}, r.report(rec), err
	}
	if mustStop(err) {
		// Not on the record: report what is, deliver nothing.
		rec, err = r.afterStop(ctx, id, rec, err)
		return time.Time{}, r.report(rec), err
	}
	r.countFinished(context.WithoutCancel(ctx), lp, rec)
	if r.flushSync(lp, id) {
		if fresh, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), id); lerr == nil {
			rec = fresh
		}
	}
	if rec.Status.Final() && len(rec.Outbox) > 0 {
		// Each notifier takes its messages in order: the next delivery due
		// is the earliest of each notifier's first pending message.
		next = time.Time{}
		seen := map[int]bool{}
		for _, m := range rec.Outbox {
			if seen[m.Notifier] {
				continue
			}
			seen[m.Notifier] = true
			if next.IsZero() || m.NextAt.Before(next) {
				next = m.NextAt
			}
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	return next, r.report(rec), err
}

// firstToken is a new release's fencing token: the creation time in
// microseconds, so that the tokens of one target's successive releases
// grow too (a takeover adds 1), and a target that keeps the highest token
// it took, whatever the release, refuses a stale runner of an earlier one
// without refusing the next release. Clocks of the machines creating
// releases of one target must agree to within the time between two
// releases; a target that keeps the token per release (Deployment.ID)
// needs no clock at all.
func firstToken(now time.Time) int64 { return max(1, now.UnixMicro()) }
