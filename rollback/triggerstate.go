package rollback

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

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
			s.old = parseStates(c.Judge)
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
	c.Judge = formatStates(s.new)
}

// formatStates writes the states as a JSON object of base64 strings by
// name, in the order of the names, as encoding/json would.
func formatStates(m map[string][]byte) string {
	names := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		names = append(names, k)
		n += len(k) + 8 + base64.StdEncoding.EncodedLen(len(v))
	}
	slices.Sort(names)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		q, _ := json.Marshal(k) // a string always marshals
		b = append(b, q...)
		b = append(b, ':', '"')
		b = base64.StdEncoding.AppendEncode(b, m[k])
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// parseStates reads what formatStates wrote without running the JSON
// scanner over the base64, and anything else through encoding/json; nil
// when s is not such an object.
func parseStates(s string) map[string][]byte {
	m := map[string][]byte{}
	i := 0
	fail := func() map[string][]byte {
		var v map[string][]byte
		if json.Unmarshal([]byte(s), &v) != nil {
			return nil
		}
		return v
	}
	if len(s) < 2 || s[0] != '{' {
		return fail()
	}
	i = 1
	for i < len(s) && s[i] != '}' {
		if s[i] == ',' {
			i++
		}
		// The name: a JSON string without escapes.
		if i >= len(s) || s[i] != '"' {
			return fail()
		}
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 || strings.IndexByte(s[i+1:i+1+j], '\\') >= 0 {
			return fail()
		}
		name := s[i+1 : i+1+j]
		i += j + 2
		if !strings.HasPrefix(s[i:], `:"`) {
			return fail()
		}
		i += 2
		j = strings.IndexByte(s[i:], '"')
		if j < 0 {
			return fail()
		}
		v, err := base64.StdEncoding.AppendDecode(nil, []byte(s[i:i+j]))
		if err != nil {
			return fail()
		}
		m[name] = v
		i += j + 1
	}
	if i != len(s)-1 {
		return fail()
	}
	return m
}
