package river

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	rq "github.com/riverqueue/river"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state/postgres"
)

// Defaults of [Config].
const (
	DefaultQueue         = "deploykit"
	DefaultMaxWorkers    = 50
	DefaultMaxAttempts   = 25
	DefaultFlaggedRetry  = 10 * time.Minute
	DefaultSweepInterval = 5 * time.Minute
	DefaultNotifyTimeout = 10 * time.Second
	// StoreMargin is what the derived JobTimeout adds to
	// deploy.Bounds.Reconcile for the store's own round trips.
	StoreMargin = 30 * time.Second
)

// ErrInvalid: a Config that cannot work. The error names the field and
// the value.
var ErrInvalid = errors.New("river: invalid configuration")

// Config configures a [Fleet]. Runner and Store are required; every other
// field has a default, and JobTimeout and RescueStuckJobsAfter are derived
// from the runner's bounds (deploy.Runner.Bounds) when zero.
type Config struct {
	// Runner drives the releases: each job calls its Reconcile. Its store
	// must be Store (deploy.WithStore).
	Runner *deploy.Runner
	// Store is the runner's store: Release creates records in it inside
	// the transaction that enqueues their jobs, and the sweep lists it.
	Store *postgres.Store
	// Name names this worker in Rounds and logs; the runner's holder name
	// (deploy.WithHolder) by default.
	Name string
	// Queue is the River queue of the release jobs, DefaultQueue by default.
	Queue string
	// MaxWorkers is how many releases this process drives at once,
	// DefaultMaxWorkers by default.
	MaxWorkers int
	// JobTimeout bounds one round (one Reconcile). Zero derives it:
	// Runner.Bounds().Reconcile() plus StoreMargin. A smaller value than
	// Reconcile's bound is refused: River would cancel an Apply the runner
	// still allows.
	JobTimeout time.Duration
	// RescueStuckJobsAfter is when River's rescuer takes a round whose
	// process died back (it runs every 30 s on the leader). Zero derives it:
	// JobTimeout plus the runner's lease grace. A smaller value is refused:
	// a rescued round would find the dead runner's lease still running.
	RescueStuckJobsAfter time.Duration
	// MaxAttempts is how many rounds in a row may fail (errors, rescues)
	// before the release is flagged (see the package documentation),
	// DefaultMaxAttempts by default.
	MaxAttempts int
	// FlaggedRetry is how often a flagged release is tried again,
	// DefaultFlaggedRetry by default.
	FlaggedRetry time.Duration
	// SweepInterval is how often the leader re-enqueues active releases
	// that have no job, DefaultSweepInterval by default; negative turns
	// the periodic sweep off (Fleet.Sweep still works).
	SweepInterval time.Duration
	// Notifiers hear the fleet's urgent events: a release flagged after
	// MaxAttempts failed rounds, a release found without a job. Each call
	// is bounded by NotifyTimeout (DefaultNotifyTimeout) and may not panic
	// the process.
	Notifiers     []deploy.Notifier
	NotifyTimeout time.Duration
	// OnRound, if set, is told about every round this process drove. It is
	// bounded by NotifyTimeout like a notifier.
	OnRound func(Round)
	// Logger logs the fleet's decisions; nothing by default. River logs to
	// it too when set.
	Logger *slog.Logger
	// River is the base River configuration (FetchPollInterval, Schema,
	// ID…); nil means River's defaults. The fields the fleet sets —
	// Workers, Queues, JobTimeout, RescueStuckJobsAfter, MaxAttempts,
	// PeriodicJobs — must be left zero in it.
	River *rq.Config
}

// Round is one Reconcile of a release by a worker.
type Round struct {
	ID     string
	Worker string
	// Due is when the round was due (the previous round's next, or the
	// release's start); Started when this worker began it. Started−Due is
	// its lateness.
	Due, Started time.Time
	// Took is how long Reconcile took; Next is what it returned (zero
	// once the release is over or on an error).
	Took time.Duration
	Next time.Time
	// Status and Phase are the release's after the round.
	Status deploy.Status
	Phase  deploy.Phase
	// Outcome is what the job does next: "snooze", "done", "locked",
	// "retry", "flagged" or "cancelled".
	Outcome string
	Err     error
}

// settings are a Config with defaults applied and derived values.
type settings struct {
	Config
	bounds deploy.Bounds
}

// check applies the defaults and refuses inconsistent settings, naming the
// field and the value.
func (c Config) check() (settings, error) {
	s := settings{Config: c}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if c.Runner == nil {
		bad("Config.Runner is nil")
	}
	if c.Store == nil {
		bad("Config.Store is nil")
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	s.bounds = c.Runner.Bounds()
	if strings.TrimSpace(s.Name) == "" {
		s.Name = s.bounds.Holder
	}
	s.Queue = cmpOr(s.Queue, DefaultQueue)
	s.MaxWorkers = cmpOr(s.MaxWorkers, DefaultMaxWorkers)
	s.MaxAttempts = cmpOr(s.MaxAttempts, DefaultMaxAttempts)
	s.FlaggedRetry = cmpOr(s.FlaggedRetry, DefaultFlaggedRetry)
	s.SweepInterval = cmpOr(s.SweepInterval, DefaultSweepInterval)
	s.NotifyTimeout = cmpOr(s.NotifyTimeout, DefaultNotifyTimeout)
	reconcile := s.bounds.Reconcile()
	s.JobTimeout = cmpOr(s.JobTimeout, reconcile+StoreMargin)
	s.RescueStuckJobsAfter = cmpOr(s.RescueStuckJobsAfter, s.JobTimeout+s.bounds.LeaseGrace)
	switch {
	case s.MaxWorkers < 0:
		bad("Config.MaxWorkers %d is negative", s.MaxWorkers)
	case s.MaxAttempts < 0:
		bad("Config.MaxAttempts %d is negative", s.MaxAttempts)
	case s.FlaggedRetry < 0:
		bad("Config.FlaggedRetry %v is negative", s.FlaggedRetry)
	case s.NotifyTimeout < 0:
		bad("Config.NotifyTimeout %v is negative", s.NotifyTimeout)
	}
	if s.JobTimeout < reconcile {
		bad("Config.JobTimeout %v is shorter than one Reconcile of the runner may take, %v (deploy.Bounds.Reconcile: the longest action %v — a step's Apply is bounded by the progress deadline %v, the rollback by %v × %d — plus an observation %v and notifications); River would cancel a round the runner still allows: raise JobTimeout or leave it 0 to derive it",
			s.JobTimeout, reconcile, s.bounds.Action(), s.bounds.Apply, s.bounds.Rollback, 1+s.bounds.RollbackSteps, s.bounds.Timeouts.Observe)
	}
	if min := s.JobTimeout + s.bounds.LeaseGrace; s.RescueStuckJobsAfter < min {
		bad("Config.RescueStuckJobsAfter %v is shorter than JobTimeout %v plus the runner's lease grace %v (%v): a rescued round would find the dead worker's lease still running; raise it or leave it 0 to derive it",
			s.RescueStuckJobsAfter, s.JobTimeout, s.bounds.LeaseGrace, min)
	}
	if r := c.River; r != nil {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"Workers", r.Workers != nil}, {"Queues", r.Queues != nil}, {"JobTimeout", r.JobTimeout != 0},
			{"RescueStuckJobsAfter", r.RescueStuckJobsAfter != 0}, {"MaxAttempts", r.MaxAttempts != 0}, {"PeriodicJobs", r.PeriodicJobs != nil},
		} {
			if f.set {
				bad("Config.River.%s is set; the fleet sets it (use the Config field of the same name, if any)", f.name)
			}
		}
	}
	return s, errors.Join(errs...)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
