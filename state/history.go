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
	c.Undelivered = slices.Clone(r.Undelivered)
	c.Steps = slices.Clone(r.Steps)
	c.Memo = maps.Clone(r.Memo)
	c.RollbackSteps = clip(r.RollbackSteps)
	c.Trigger = r.Trigger.clone()
	c.RollbackRequest = r.RollbackRequest.clone()
	c.Waiting = r.Waiting.Clone()
	c.Decisions = slices.Clone(r.Decisions)
	c.Analyses = cloneRuns(r.Analyses)
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

// copyHeadInto makes dst a copy of r like [Record.shareHistory] does, but
// reuses the maps and slices dst already owns, so that a store updating a
// record it keeps allocates little. dst must share no memory with callers
// but for its history.
func (r *Record) copyHeadInto(dst *Record) {
	old := *dst
	*dst = *r
	dst.Release.Links = refillMap(old.Release.Links, r.Release.Links)
	dst.Release.Labels = refillMap(old.Release.Labels, r.Release.Labels)
	dst.Gates = refillSlice(old.Gates, r.Gates)
	dst.Baseline = refillMap(old.Baseline, r.Baseline)
	dst.Last = refillMap(old.Last, r.Last)
	dst.Windows = refillSlice(old.Windows, r.Windows)
	dst.Timeline = clip(r.Timeline)
	dst.Checklist = refillMap(old.Checklist, r.Checklist)
	dst.MonitorState = nil
	if r.MonitorState != nil {
		dst.MonitorState = old.MonitorState
		if dst.MonitorState == nil {
			dst.MonitorState = make(map[string][]byte, len(r.MonitorState))
		}
		for k := range dst.MonitorState {
			if _, ok := r.MonitorState[k]; !ok {
				delete(dst.MonitorState, k)
			}
		}
		for k, v := range r.MonitorState {
			dst.MonitorState[k] = append(dst.MonitorState[k][:0], v...)
		}
	}
	dst.Waivers = refillSlice(old.Waivers, r.Waivers)
	dst.Outbox = refillSlice(old.Outbox, r.Outbox)
	dst.Undelivered = refillSlice(old.Undelivered, r.Undelivered)
	dst.Steps = refillSlice(old.Steps, r.Steps)
	dst.Memo = refillMap(old.Memo, r.Memo)
	dst.RollbackSteps = clip(r.RollbackSteps)
	dst.Trigger = r.Trigger.clone()
	dst.RollbackRequest = r.RollbackRequest.clone()
	dst.Waiting = r.Waiting.Clone()
	dst.Decisions = refillSlice(old.Decisions, r.Decisions)
	dst.Analyses = cloneRuns(r.Analyses)
}

// refillMap returns dst holding exactly src's entries, reusing dst, or nil
// when src is nil. Only the entries that differ are written: a record saved
// again mostly carries the maps it had (its baseline, its checklist).
func refillMap[M ~map[K]V, K, V comparable](dst, src M) M {
	if src == nil {
		return nil
	}
	if dst == nil {
		return maps.Clone(src)
	}
	for k, v := range src {
		if old, ok := dst[k]; !ok || old != v {
			dst[k] = v
		}
	}
	if len(dst) != len(src) {
		for k := range dst {
			if _, ok := src[k]; !ok {
				delete(dst, k)
			}
		}
	}
	return dst
}

// refillSlice returns dst holding exactly src's elements, reusing dst's
// array, or nil when src is nil.
func refillSlice[S ~[]E, E any](dst, src S) S {
	if src == nil {
		return nil
	}
	return append(dst[:0], src...)
}
