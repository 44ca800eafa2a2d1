package deploytest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/deploykit/deploy/state"
)

// ErrCrashed is what every call to a crashed FaultStore returns.
var ErrCrashed = errors.New("deploytest: the store's runner has crashed")

// Fault is what FaultStore.OnWrite asks for at one write.
type Fault struct {
	// Crash crashes the store: this write and every later call fail with
	// ErrCrashed (with After, this write goes through first).
	Crash bool
	// Pause holds the writing runner for this long (virtual time inside
	// synctest), as SIGSTOP, a long GC pause or a frozen VM would: before
	// the write, or with After, once it is written and before the runner
	// learns so — the moment between proving a lease and acting on it.
	Pause time.Duration
	// After makes Crash and Pause happen after the write.
	After bool
}

// FaultStore wraps the store of one runner to make it fail as a process
// does: give each runner under test its own FaultStore over one shared
// store. Crash stops the runner as a crash would: it writes nothing more,
// and, since the runner acts only on what it could record first, it makes
// no further effect (no Apply, no rollback) and returns an error wrapping
// ErrCrashed. A new runner then resumes the release from the shared store,
// once the crashed runner's lease has run out. OnWrite injects crashes and
// pauses at chosen writes. All methods are safe for concurrent use.
type FaultStore struct {
	state.Store
	// OnWrite, when set, is called before every Update with the record about
	// to be written and the number of writes before it; its Fault is
	// injected.
	OnWrite func(r *state.Record, writes int) Fault

	mu      sync.Mutex
	crashed bool
	writes  int
}

var _ state.Store = (*FaultStore)(nil)

// NewFaultStore wraps s.
func NewFaultStore(s state.Store) *FaultStore { return &FaultStore{Store: s} }

// Crash makes every later call fail with ErrCrashed.
func (f *FaultStore) Crash() {
	f.mu.Lock()
	f.crashed = true
	f.mu.Unlock()
}

// Crashed reports whether the store has crashed.
func (f *FaultStore) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Writes returns how many Updates went through.
func (f *FaultStore) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Create implements state.Store.
func (f *FaultStore) Create(ctx context.Context, r *state.Record) error {
	if f.Crashed() {
		return ErrCrashed
	}
	return f.Store.Create(ctx, r)
}

// Load implements state.Store.
func (f *FaultStore) Load(ctx context.Context, id string) (*state.Record, error) {
	if f.Crashed() {
		return nil, ErrCrashed
	}
	return f.Store.Load(ctx, id)
}

// Update implements state.Store, injecting OnWrite's fault.
func (f *FaultStore) Update(ctx context.Context, r *state.Record) error {
	f.mu.Lock()
	if f.crashed {
		f.mu.Unlock()
		return ErrCrashed
	}
	n, on := f.writes, f.OnWrite
	f.mu.Unlock()
	var fault Fault
	if on != nil {
		fault = on(r, n)
	}
	if !fault.After {
		if fault.Pause > 0 {
			time.Sleep(fault.Pause)
		}
		if fault.Crash {
			f.Crash()
			return ErrCrashed
		}
	}
	if f.Crashed() {
		return ErrCrashed
	}
	if err := f.Store.Update(ctx, r); err != nil {
		return err
	}
	f.mu.Lock()
	f.writes++
	f.mu.Unlock()
	if fault.After {
		if fault.Crash {
			f.Crash()
			return ErrCrashed
		}
		if fault.Pause > 0 {
			time.Sleep(fault.Pause)
		}
	}
	return nil
}

// WhenTimeline returns an OnWrite that injects fault at the first write
// whose new timeline entries include one that match reports true for —
// the entries appended since the last write it saw, so a transition saved
// together with the next action is found all the same. See CrashAfterStep.
func WhenTimeline(match func(state.Entry) bool, fault Fault) func(*state.Record, int) Fault {
	seen, done := 0, false
	var mu sync.Mutex
	return func(r *state.Record, _ int) Fault {
		mu.Lock()
		defer mu.Unlock()
		from := min(seen, len(r.Timeline))
		seen = len(r.Timeline)
		if done {
			return Fault{}
		}
		for _, e := range r.Timeline[from:] {
			if match(e) {
				done = true
				return fault
			}
		}
		return Fault{}
	}
}

// CrashAfterStep returns an OnWrite that crashes the runner right after
// the write that records step (a step's Name) applied: users are on that
// step, and the record says so.
func CrashAfterStep(step string) func(*state.Record, int) Fault {
	return WhenTimeline(func(e state.Entry) bool {
		return e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied && e.Name == step
	}, Fault{Crash: true, After: true})
}
