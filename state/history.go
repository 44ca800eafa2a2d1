package state

import (
	"fmt"
	"maps"
	"slices"
)

// clip returns s with its capacity cut to its length, so that an append to
// it reallocates instead of writing into memory another holder may read.
func clip[S ~[]E, E any](s S) S { return s[:len(s):len(s)] }

// shareHistory returns a copy of r like [Record.Clone], but for the
// append-only history (Timeline and RollbackSteps), which it shares,
// clipped, instead of copying. See "History is append-only" in the package
// documentation.
func (r *Record) shareHistory() *Record {
	c := *r
	c.Release.Links = maps.Clone(r.Release.Links)
	c.Release.Labels = maps.Clone(r.Release.Labels)
	c.Gates = slices.Clone(r.Gates)
	c.Baseline = maps.Clone(r.Baseline)
	c.Last = maps.Clone(r.Last)
	c.Windows = slices.Clone(r.Windows)
	c.Timeline = clip(r.Timeline)
	c.Checklist = maps.Clone(r.Checklist)
	if r.MonitorState != nil {
		c.MonitorState = make(map[string][]byte, len(r.MonitorState))
		for k, v := range r.MonitorState {
			c.MonitorState[k] = slices.Clone(v)
		}
	}
	c.Waivers = slices.Clone(r.Waivers)
	c.Outbox = slices.Clone(r.Outbox)
	c.RollbackSteps = clip(r.RollbackSteps)
	c.Trigger = r.Trigger.clone()
	c.RollbackRequest = r.RollbackRequest.clone()
	return &c
}

// CheckHistory returns an error matching [ErrHistory] when the update r
// would shorten the stored history: when r carries fewer than timeline
// Timeline entries or fewer than rollback RollbackSteps. Stores call it
// after the Rev and Token checks; stores in other packages may too.
func CheckHistory(r *Record, timeline, rollback int) error {
	if len(r.Timeline) < timeline {
		return fmt.Errorf("%w: %s has %d timeline entries, update carries %d", ErrHistory, r.ID, timeline, len(r.Timeline))
	}
	if len(r.RollbackSteps) < rollback {
		return fmt.Errorf("%w: %s has %d rollback steps, update carries %d", ErrHistory, r.ID, rollback, len(r.RollbackSteps))
	}
	return nil
}
