package rollback

import (
	"encoding/json"

	"github.com/deploykit/deploy/monitor"
)

// triggerStates collects, during one [Policy.Judge], the states of the
// policy's stateful triggers, to be written to Counters.Judge once at the
// end. The states are read lazily, once per Judge.
type triggerStates struct {
	read    bool
	old     map[string][]byte
	new     map[string][]byte
	changed bool
}

// judgeStateful runs t with the state Counters.Judge holds for it.
func judgeStateful(c *Counters, s *triggerStates, t StatefulTrigger, obs, baseline monitor.Observation) Result {
	if !s.read {
		s.read = true
		if c.Judge != "" {
			// A state that cannot be read starts afresh: the trigger's
			// reason says so when its own part is unreadable.
			_ = json.Unmarshal([]byte(c.Judge), &s.old)
		}
	}
	name := t.Name()
	prev := s.old[name]
	r, next := t.EvaluateState(prev, obs, baseline)
	if s.new == nil {
		s.new = make(map[string][]byte, 1)
	}
	s.new[name] = next
	if string(next) != string(prev) {
		s.changed = true
	}
	return r
}

// save writes the states to c.Judge when they changed. States of triggers
// the policy no longer has are dropped.
func (s *triggerStates) save(c *Counters) {
	if !s.read {
		return
	}
	if !s.changed && len(s.new) == len(s.old) {
		return
	}
	if len(s.new) == 0 {
		c.Judge = ""
		return
	}
	b, err := json.Marshal(s.new)
	if err != nil {
		return // map[string][]byte always marshals
	}
	c.Judge = string(b)
}
