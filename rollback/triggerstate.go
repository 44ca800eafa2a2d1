package rollback

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"

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
func judgeStateful(c *Counters, s *triggerStates, t StatefulTrigger, obs, baseline monitor.Observation, brief bool) Result {
	if !s.read {
		s.read = true
		if c.Judge != "" {
			// A state that cannot be read starts afresh: the trigger's
			// reason says so when its own part is unreadable.
			s.old = readStates(c.Judge)
		}
	}
	name := t.Name()
	prev := s.old[name]
	var (
		r    Result
		next []byte
	)
	switch sq := t.(type) {
	case Sequential:
		r, next = sq.evaluateState(prev, obs, baseline, brief)
	case *Sequential:
		r, next = sq.evaluateState(prev, obs, baseline, brief)
	default:
		r, next = t.EvaluateState(prev, obs, baseline)
	}
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
		if s.old != nil {
			parsed.put(c.Judge, s.old) // for the next look, as it was
		}
		return
	}
	if len(s.new) == 0 {
		c.Judge = ""
		return
	}
	c.Judge = formatStates(s.new)
	parsed.put(c.Judge, s.new)
}

// parsed keeps the states of the last Counters.Judge texts written, by
// their text, so that the next look of the same release reads its state
// without decoding the text again (a look of a week-long watch would
// otherwise spend as long decoding base64 as judging). The states are
// never changed once written; a text not kept (another process wrote it,
// or it was evicted) is parsed.
var parsed = stateCache{m: map[string]map[string][]byte{}}

// stateCacheSize bounds the texts kept: one per release being judged at a
// time, with room to spare.
const stateCacheSize = 1024

type stateCache struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

func (c *stateCache) put(text string, states map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= stateCacheSize {
		clear(c.m)
	}
	c.m[text] = states
}

// readStates returns the states text holds, from the cache when it has
// them (taking them out: each text is read by the look after the one that
// wrote it), else parsed.
func readStates(text string) map[string][]byte {
	parsed.mu.Lock()
	m, ok := parsed.m[text]
	if ok {
		delete(parsed.m, text)
	}
	parsed.mu.Unlock()
	if ok {
		return m
	}
	return parseStates(text)
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
		if plainName(k) {
			b = append(b, '"')
			b = append(b, k...)
			b = append(b, '"')
		} else {
			q, _ := json.Marshal(k) // a string always marshals
			b = append(b, q...)
		}
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

// plainName reports whether k reads the same as a JSON string between
// quotes, as the package's trigger names do, so that it needs no encoder.
func plainName(k string) bool {
	for i := range len(k) {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
