package deploy

import (
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// monitorKey names a monitor's saved state: its position and name, so that
// a reordered configuration does not hand one monitor another's state.
func (r *Runner) monitorKey(i int) string {
	return strconv.Itoa(i) + ":" + nameOf(r.cfg.monitors[i])
}

// saveMonitors keeps the state of stateful monitors after the baseline.
func (r *Runner) saveMonitors(rec *state.Record, now time.Time) {
	for i, m := range r.cfg.monitors {
		sm, ok := m.(monitor.Stateful)
		if !ok {
			continue
		}
		b, err := sm.State()
		if err != nil {
			r.note(rec, now, state.EntryNote, state.OutcomeFailed, nameOf(m), "baseline state not saved: "+err.Error())
			continue
		}
		if rec.MonitorState == nil {
			rec.MonitorState = map[string][]byte{}
		}
		rec.MonitorState[r.monitorKey(i)] = b
	}
}

// restoreMonitors gives stateful monitors back what they saved, once per
// loop: in a process that resumes a release they have not seen the baseline.
func (r *Runner) restoreMonitors(rec *state.Record) {
	for i, m := range r.cfg.monitors {
		sm, ok := m.(monitor.Stateful)
		if !ok {
			continue
		}
		if b, ok := rec.MonitorState[r.monitorKey(i)]; ok {
			if err := sm.Restore(b); err != nil {
				r.cfg.logger.Warn("deploy: restoring a monitor's state", "release", rec.ID, "monitor", nameOf(m), "err", err)
			}
		}
	}
}
