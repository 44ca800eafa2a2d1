// Package state keeps the persisted truth of a release: one [Record] per
// deployment, saved at every transition so that a crashed runner can resume.
//
// # Stores
//
// A [Store] creates, loads and updates records with compare-and-swap on
// [Record.Rev], and keeps one active release per service and environment.
// [Memory] is for tests; [File] (a small head per release, appended to a
// checksummed log of heads with one fsync, mode 0600, beside an append-only
// history file) is
// the default; package state/postgres serves fleets of runners from one
// PostgreSQL database. Every store passes the conformance suite
// deploytest.TestStore.
//
// # History is append-only
//
// [Record.Timeline] and [Record.RollbackSteps] are the record's history.
// They only grow: an Update may append entries to them, never remove or
// change one already stored. A store refuses an Update whose Timeline or
// RollbackSteps is shorter than the stored one with [ErrHistory]; it does
// not compare the entries already stored, which are the caller's to leave
// alone. In return every store costs the same per Update at the thousandth
// entry as at the first: [Memory] shares the history with its callers
// instead of copying it, [File] keeps up to 16 new entries in the head and
// appends them to a file of JSON lines once there are more, and
// state/postgres inserts one row per new entry.
//
// Sharing is safe because stores hand out and keep history slices clipped
// to their length (s[:n:n]): appending to a loaded record always writes to
// memory of the caller's own, never to entries another holder reads. So a
// caller may append to Timeline and RollbackSteps freely, but must not
// assign to an element already there, nor cut the slice short and append
// again (that too writes over stored entries). A caller that keeps its record
// between saves and appends to it pays nothing for the history; one that
// reloads before every save pays one copy of the history at its first
// append after the Load (Go's append of a clipped slice reallocates).
//
// # Release fields
//
// [Release.Validate] is the one rule for a release's fields — allowed
// characters and lengths, no control characters, no "." or ".." names —
// checked by the runner before anything else, the same for every store.
//
// # Leases and fencing
//
// A runner that drives a record holds a lease on it: [Record.Holder],
// [Record.Token] and [Record.LeaseUntil]. Taking over a record raises the
// token; an update carrying a lower token than the stored one is refused with
// [ErrFenced], so a runner that lost its lease cannot overwrite the new
// holder's work even if it reloads. [WithToken] and [TokenFrom] carry the
// token to the effects a runner makes, for targets that keep it.
//
// # Listing
//
// A store that implements [Lister] ([Memory], [File], state/postgres) lists
// its releases by service, environment, status or ActiveOnly, in pages of
// a stable cursor, each with the time its next action is due
// ([Record.Next], what Runner.Reconcile returned): a scheduler that drives
// many releases finds them there after a crash.
//
// # Records set aside
//
// A record that cannot be read, or whose holder is gone for good, would keep
// its service from releasing again: the store cannot know it is over. A
// store that implements [Quarantiner] lets an operator set such a record
// aside with a reason: it no longer counts as active, and Load and Update of
// it fail with a [*QuarantineError] that matches [ErrQuarantined] and says
// why, when and where its data was kept.
//
// This package imports nothing else of the project.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Errors returned by stores.
var (
	// ErrNotFound: no record with that id.
	ErrNotFound = errors.New("state: record not found")
	// ErrExists: Create with an id that already exists.
	ErrExists = errors.New("state: record already exists")
	// ErrConflict: Update with a stale Rev.
	ErrConflict = errors.New("state: record changed since it was loaded")
	// ErrFenced: Update with a fencing token lower than the stored one.
	ErrFenced = errors.New("state: fencing token is stale")
	// ErrActive: Create, or an Update that brings a final record back to
	// running, while another release of the same service and environment
	// is still active. A store that cannot tell whether an unreadable
	// record is active refuses with an error that matches both ErrActive
	// and ErrCorrupt.
	ErrActive = errors.New("state: another release of this service and environment is active")
	// ErrCorrupt: a stored record cannot be decoded.
	ErrCorrupt = errors.New("state: record is corrupt")
	// ErrHistory: Update with a Timeline or RollbackSteps shorter than the
	// stored one. History is append-only (see the package documentation);
	// a record with the current Rev and less history is a caller's bug,
	// not a race, so it is not ErrConflict and retrying will not help.
	ErrHistory = errors.New("state: update would remove entries from the append-only history")
	// ErrQuarantined: the record was set aside with [Quarantiner]. The
	// error is a [*QuarantineError] with the reason.
	ErrQuarantined = errors.New("state: record was set aside")
)

// Release describes what is being released. deploy.Release is this type.
type Release struct {
	// Service is the name of the service being released. Required.
	Service string `json:"service"`
	// Version is the version being released. Required.
	Version string `json:"version"`
	// Environment is where it is released ("production" by default).
	Environment string `json:"environment"`
	// PreviousVersion is the version running now, the rollback target.
	PreviousVersion string `json:"previousVersion,omitempty"`
	// Commit is the source revision.
	Commit string `json:"commit,omitempty"`
	// CommitTime is when Commit was made (committed, or merged), the start
	// of the lead time for changes. Zero means unknown: no lead time is
	// recorded.
	CommitTime time.Time `json:"commitTime,omitzero"`
	// Description says what is delivered, for the report.
	Description string `json:"description,omitempty"`
	// Links name artifacts shown in the report: design doc, ticket, PR.
	Links map[string]string `json:"links,omitempty"`
	// Labels are free-form key/values passed to monitors and notifiers.
	Labels map[string]string `json:"labels,omitempty"`
}

// Status of a record.
type Status string

// Statuses. Every status but Running is final.
const (
	Running        Status = "running"
	Succeeded      Status = "succeeded"
	RolledBack     Status = "rolled back"
	Failed         Status = "failed"
	Blocked        Status = "blocked"
	Aborted        Status = "aborted"
	RollbackFailed Status = "rollback failed"
	// RollbackUnverified: the rollback ran, but nothing could show that it
	// restored health (no data for the previous version): a person should
	// check by hand.
	RollbackUnverified Status = "rollback not verified"
)

// Final reports whether s ends a release.
func (s Status) Final() bool { return s != Running && s != "" }

// Measurement is a metric value with its sample count, as persisted.
type Measurement struct {
	Value   float64 `json:"value"`
	Samples int     `json:"samples"`
}

// Entry is one line of a release's timeline.
type Entry struct {
	At    time.Time `json:"at"`
	Phase Phase     `json:"phase"`
	Kind  EntryKind `json:"kind"`
	// Outcome is what came of it, for code; Detail is for people.
	Outcome  Outcome `json:"outcome,omitempty"`
	Name     string  `json:"name,omitempty"`
	Stage    string  `json:"stage,omitempty"`
	Exposure float64 `json:"exposure"`
	Detail   string  `json:"detail,omitempty"`
	// Values are the metrics measured, by name, on an observation or a
	// verdict: what the report's charts plot. Entries are never changed
	// once appended, so the map is shared and never written.
	Values map[string]float64 `json:"values,omitempty"`
}

// Tick is the state of one checklist item.
type Tick struct {
	Done     bool      `json:"done"`
	Evidence string    `json:"evidence,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// Gate is the last result of one gate.
type Gate struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason,omitempty"`
	// Evidence is what the gate said it saw when it passed (deploy.Evidence).
	Evidence string    `json:"evidence,omitempty"`
	RetryAt  time.Time `json:"retryAt,omitzero"`
	At       time.Time `json:"at"`
}

// Trigger is what made a release roll back.
type Trigger struct {
	Kind     TriggerKind `json:"kind"`
	Metric   string      `json:"metric,omitempty"`
	Observed *float64    `json:"observed,omitempty"`
	Baseline *float64    `json:"baseline,omitempty"`
	// Reference says what Baseline is: "control" or "baseline".
	Reference string   `json:"reference,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	Samples   int      `json:"samples,omitempty"`
	Reason    string   `json:"reason"`
	// Traces are trace IDs of failing or slow requests behind the breach
	// (from exemplars), when the metric's source gave them.
	Traces []string  `json:"traces,omitempty"`
	Stage  string    `json:"stage,omitempty"`
	Step   string    `json:"step,omitempty"`
	At     time.Time `json:"at"`
}

// Window records how one watch window ran.
type Window struct {
	Name         string        `json:"name"`
	Interval     time.Duration `json:"interval"`
	Start        time.Time     `json:"start"`
	End          time.Time     `json:"end,omitzero"`
	Observations int           `json:"observations"`
}

// Message is one notification waiting in, or delivered from, the outbox.
type Message struct {
	ID        int             `json:"id"`
	Notifier  int             `json:"notifier"` // index of the notifier
	Event     json.RawMessage `json:"event"`
	Attempts  int             `json:"attempts"`
	NextAt    time.Time       `json:"nextAt,omitzero"`
	Delivered bool            `json:"delivered"`
	LastError string          `json:"lastError,omitempty"`
	// Queued is when the message was put in the outbox.
	Queued time.Time `json:"queued,omitzero"`
	// Refused is set when the notifier's last answer said retrying cannot
	// help (an HTTP 401 or 404): the message stays pending, retried at the
	// longest backoff, until the notifier's configuration is fixed or the
	// message expires.
	Refused bool `json:"refused,omitempty"`
	// Expired is when the message was given up because it was older than
	// its notifier's maximum age; it is then in Record.Undelivered.
	Expired time.Time `json:"expired,omitzero"`
}

// Waiver is a pitfall guard waived with a written reason.
type Waiver struct {
	Pitfall string `json:"pitfall"`
	Reason  string `json:"reason"`
}

// Record is the persisted truth of one release.
type Record struct {
	ID string `json:"id"`
	// Rev is the store's version of the record, raised by every Update.
	Rev     int64   `json:"rev"`
	Release Release `json:"release"`
	// Strategy names the strategy type.
	Strategy string `json:"strategy"`
	Phase    Phase  `json:"phase"`
	Status   Status `json:"status"`

	// Stage and Step index the step to apply next, or being baked when
	// Applied is true.
	Stage     int       `json:"stage"`
	Step      int       `json:"step"`
	Applied   bool      `json:"applied"`
	StepStart time.Time `json:"stepStart,omitzero"`
	// Applying is true from the save before a step's Apply to the save
	// after it: while it is, with a live lease, the holder may be inside
	// the Apply.
	Applying bool `json:"applying,omitempty"`
	// BakeStart is when the step's clean bake started (reset by a Wait verdict).
	BakeStart time.Time `json:"bakeStart,omitzero"`
	Exposure  float64   `json:"exposure"`
	// Steps are the names of the current stage's steps, as planned when the
	// stage started: a Resume whose plan differs in a step done or under
	// way refuses to go on.
	Steps []string `json:"steps,omitempty"`
	// Memo is the strategy's memory of this release (Deployment.Memo),
	// saved with the record when the release is created.
	Memo map[string]string `json:"memo,omitempty"`

	Gates    []Gate                 `json:"gates,omitempty"`
	Baseline map[string]Measurement `json:"baseline,omitempty"`
	Last     map[string]Measurement `json:"last,omitempty"`
	Counters Counters               `json:"counters"`
	// MonitorState is what stateful monitors learned at the baseline
	// (monitor.Stateful), by monitor, restored in a process that resumes.
	MonitorState map[string][]byte `json:"monitorState,omitempty"`
	Observed     int               `json:"observed"`
	Windows      []Window          `json:"windows,omitempty"`
	Timeline     []Entry           `json:"timeline,omitempty"`
	Checklist    map[string]Tick   `json:"checklist,omitempty"`
	Waivers      []Waiver          `json:"waivers,omitempty"`
	Outbox       []Message         `json:"outbox,omitempty"`

	// RollbackRequest is a manual rollback asked for while the holder was in
	// the middle of an action: the holder carries it out next, instead of
	// the action that would follow.
	RollbackRequest *Trigger `json:"rollbackRequest,omitempty"`

	// Waiting says what the release waits for — an approval, a pause, a
	// person's decision on an inconclusive analysis, a Retry after an
	// abort — or is nil while it waits for nothing but time.
	Waiting *Wait `json:"waiting,omitempty"`
	// Decisions are the decisions people took about the release, in the
	// order they were written, pending until the holder carries them out.
	Decisions []Decision `json:"decisions,omitempty"`
	// Analyses are the release's analysis runs, in the order they started.
	Analyses []AnalysisRun `json:"analyses,omitempty"`
	// Attempt counts the Retries after an abort: 0 for the first attempt.
	Attempt int `json:"attempt,omitempty"`
	// Full is set once a full promotion was decided in this attempt: the
	// remaining steps' pauses and analyses are skipped.
	Full bool `json:"full,omitempty"`
	// RollbackFrom is how many RollbackSteps earlier attempts left: the
	// current attempt's rollback starts after them.
	RollbackFrom int `json:"rollbackFrom,omitempty"`

	// Rollback state.
	RollbackReason string   `json:"rollbackReason,omitempty"`
	Trigger        *Trigger `json:"trigger,omitempty"`
	// RollbackStart is when the rollback's steps finished (zero until they
	// have): the previous version serves from then on, and the rollback is
	// verified on the window that starts here.
	RollbackStart time.Time `json:"rollbackStart,omitzero"`
	RollbackSteps []Entry   `json:"rollbackSteps,omitempty"`
	// Outcome is the final status the release is heading for once the
	// communicate phase has run; Status turns to it at the very end.
	Outcome Status `json:"outcome,omitempty"`
	// Delivered counts outbox messages delivered and removed from Outbox.
	Delivered int `json:"delivered,omitempty"`
	// Undelivered are the messages given up because they expired (see
	// Message.Expired): the report says they were not delivered.
	Undelivered []Message `json:"undelivered,omitempty"`
	// Error is the error that ended the release, if any.
	Error string `json:"error,omitempty"`

	// Lease.
	Holder     string    `json:"holder,omitempty"`
	Token      int64     `json:"token"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	// Next is when the runner that saved the record said its next action
	// is due: what Runner.Reconcile returned; zero once the release is
	// over. A scheduler lists it ([Lister]) to know when to drive the
	// release again. A runner in Run saves a look that changed nothing
	// only when it renews its lease, so there Next may be a look behind;
	// LeaseUntil still bounds it.
	Next time.Time `json:"next,omitzero"`

	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Deadline time.Time `json:"deadline,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Counters mirror rollback.Counters: the policy's memory across observations.
type Counters struct {
	Failures          int `json:"failures"`
	Inconclusive      int `json:"inconclusive"`
	ConsecutiveErrors int `json:"consecutiveErrors"`
	// Judge is the state of the policy's stateful triggers (the sequential
	// test's evidence), JSON, opaque to the store.
	Judge string `json:"judge,omitempty"`
}

// Clone returns a deep copy of r, so that a store never shares memory with
// its callers. Event payloads in the outbox are treated as immutable and shared.
func (r *Record) Clone() *Record {
	c := r.shareHistory()
	c.Timeline = slices.Clone(r.Timeline)
	c.RollbackSteps = slices.Clone(r.RollbackSteps)
	return c
}

func (t *Trigger) clone() *Trigger {
	if t == nil {
		return nil
	}
	c := *t
	c.Observed = clonePtr(c.Observed)
	c.Baseline = clonePtr(c.Baseline)
	c.Threshold = clonePtr(c.Threshold)
	c.Traces = slices.Clone(c.Traces)
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Store persists records. All methods are safe for concurrent use.
//
// Records go in and come out as copies, except for their append-only
// history (Timeline and RollbackSteps), which a store may share with its
// callers as clipped slices: see "History is append-only" in the package
// documentation. After Create or Update the caller may go on appending to
// its record's history and save it again; it must not change an entry it
// has saved or loaded.
type Store interface {
	// Create stores a new record with Rev 1. It fails with ErrExists when the
	// id is taken (also by a record set aside) and ErrActive when another
	// record of the same service and environment is not final.
	Create(ctx context.Context, r *Record) error
	// Load returns a copy of the record, or ErrNotFound, or an error
	// matching ErrQuarantined for a record set aside. Its Timeline and
	// RollbackSteps may share memory with the store's: they are clipped,
	// so appending to them is safe.
	Load(ctx context.Context, id string) (*Record, error)
	// Update replaces the record when r.Rev equals the stored Rev and r.Token
	// is not lower than the stored Token, then raises r.Rev. Otherwise it
	// fails with ErrFenced or ErrConflict (checked in this order) and stores
	// nothing. With the right Rev and Token, it fails with ErrHistory when
	// r.Timeline or r.RollbackSteps is shorter than the stored one, and
	// with ErrActive when r brings a final record back to running while
	// another release of its service and environment is active. It stores
	// only the entries of the history beyond the stored ones, and may keep
	// r's history slices, clipped, instead of copying them.
	Update(ctx context.Context, r *Record) error
}
