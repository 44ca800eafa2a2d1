package rollback

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/deploykit/deploy/monitor"
)

// triggerState is one stateful trigger's state, by the trigger's name.
type triggerState struct {
	name  string
	state []byte
}

// triggerStates collects, during one [Policy.Judge], the states of the
// policy's stateful triggers, to be written to Counters.Judge once at the
// end. The states are read lazily, once per Judge. A policy has few
// stateful triggers, so they are kept in slices searched by name rather
// than in maps made for each look.
type triggerStates struct {
	read    bool
	old     []triggerState // as read; never changed (it may be cached)
	n       int            // states in few, then in more
	few     [4]triggerState
	more    []triggerState // the fifth and later, rarely
	changed bool
}

// reset forgets the new states, keeping what was read.
func (s *triggerStates) reset() {
	s.n, s.more, s.changed = 0, nil, false
	clear(s.few[:])
}

// add appends a new state.
func (s *triggerStates) add(st triggerState) {
	if s.n < len(s.few) {
		s.few[s.n] = st
	} else {
		s.more = append(s.more, st)
	}
	s.n++
}

// states returns the new states in a slice of their own.
func (s *triggerStates) states() []triggerState {
	out := make([]triggerState, 0, s.n)
	out = append(out, s.few[:min(s.n, len(s.few))]...)
	return append(out, s.more...)
}

// prev returns the state old holds for name, nil when none.
func (s *triggerStates) prev(name string) []byte {
	for i := range s.old {
		if s.old[i].name == name {
			return s.old[i].state
		}
	}
	return nil
}

// judgeStateful runs t with the state Counters.Judge holds for it.
// quiet leaves a passing result's reason unwritten (Sequential's; another
// trigger writes what it writes).
func judgeStateful(c *Counters, s *triggerStates, t StatefulTrigger, obs, baseline monitor.Observation, brief, quiet bool) Result {
	if !s.read {
		s.read = true
		if c.Judge != "" {
			// A state that cannot be read starts afresh: the trigger's
			// reason says so when its own part is unreadable.
			s.old = readStates(c.Judge)
		}
	}
	name := t.Name()
	prev := s.prev(name)
	var (
		r    Result
		next []byte
	)
	switch sq := t.(type) {
	case Sequential:
		r, next = sq.evaluateState(prev, obs, baseline, brief, quiet)
	case *Sequential:
		r, next = sq.evaluateState(prev, obs, baseline, brief, quiet)
	default:
		r, next = t.EvaluateState(prev, obs, baseline)
	}
	s.add(triggerState{name, next})
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
	if !s.changed && s.n == len(s.old) {
		if s.old != nil {
			parsed.put(c.Judge, s.old) // for the next look, as it was
		}
		return
	}
	if s.n == 0 {
		c.Judge = ""
		return
	}
	kept := s.states()
	slices.SortFunc(kept, func(a, b triggerState) int { return strings.Compare(a.name, b.name) })
	c.Judge = formatStates(kept)
	parsed.put(c.Judge, kept)
}

// parsed keeps the states of the last Counters.Judge texts written, so
// that the next look of the same release reads its state without decoding
// the text again (a look of a week-long watch would otherwise spend as
// long decoding base64 as judging). The states are never changed once
// written; a text not kept (another process wrote it, or it was evicted)
// is parsed.
//
// A text is found by where its bytes are and its length, not by hashing
// its kilobyte or so: the next look holds the very string the last one
// wrote. The entry keeps that string, so no other string can be at the
// same place while it is kept, and a lookup compares the text all the
// same (at once, when it is the same string).
var parsed = stateCache{m: map[stateKey]cachedStates{}}

// stateCacheSize bounds the texts kept: one per release being judged at a
// time, with room to spare.
const stateCacheSize = 1024

type stateKey struct {
	p *byte
	n int
}

type cachedStates struct {
	text   string
	states []triggerState
}

type stateCache struct {
	mu sync.Mutex
	m  map[stateKey]cachedStates
}

func keyOf(text string) stateKey { return stateKey{unsafe.StringData(text), len(text)} }

func (c *stateCache) put(text string, states []triggerState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= stateCacheSize {
		clear(c.m)
	}
	c.m[keyOf(text)] = cachedStates{text, states}
}

// readStates returns the states text holds, from the cache when it has
// them (taking them out: each text is read by the look after the one that
// wrote it), else parsed.
func readStates(text string) []triggerState {
	k := keyOf(text)
	parsed.mu.Lock()
	e, ok := parsed.m[k]
	if ok {
		delete(parsed.m, k)
	}
	parsed.mu.Unlock()
	if ok && e.text == text {
		return e.states
	}
	return parseStates(text)
}

// formatStates writes the states, sorted by name, as a JSON object of
// base64 strings by name, as encoding/json would write such a map.
func formatStates(states []triggerState) string {
	n := 2
	for _, st := range states {
		n += len(st.name) + 8 + base64.StdEncoding.EncodedLen(len(st.state))
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, st := range states {
		if i > 0 {
			b = append(b, ',')
		}
		if plainName(st.name) {
			b = append(b, '"')
			b = append(b, st.name...)
			b = append(b, '"')
		} else {
			q, _ := json.Marshal(st.name) // a string always marshals
			b = append(b, q...)
		}
		b = append(b, ':', '"')
		b = base64.StdEncoding.AppendEncode(b, st.state)
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// parseStates reads what formatStates wrote without running the JSON
// scanner over the base64, and anything else through encoding/json; nil
// when s is not such an object.
func parseStates(s string) []triggerState {
	var m []triggerState
	i := 0
	fail := func() []triggerState {
		var v map[string][]byte
		if json.Unmarshal([]byte(s), &v) != nil {
			return nil
		}
		m := make([]triggerState, 0, len(v))
		for k, st := range v {
			m = append(m, triggerState{k, st})
		}
		slices.SortFunc(m, func(a, b triggerState) int { return strings.Compare(a.name, b.name) })
		return m
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
		m = append(m, triggerState{name, v})
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
