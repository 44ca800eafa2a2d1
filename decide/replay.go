package decide

import (
	"context"
	"sync"
	"time"
)

// replays remembers the answer to each decision it was given a key for (a
// form's nonce, a script's Idempotency-Key), so that the same decision sent
// twice — a double click, a reload that posts again, a retried script —
// has its effect once and gets the first answer again, marked Repeated.
// It is memory of one Handler: the runner's own idempotency (a decision
// already taken is a no-op) is what holds across processes.
type replays struct {
	mu  sync.Mutex
	max int
	m   map[string]*replay
}

type replay struct {
	done  chan struct{}
	res   Outcome
	until time.Time
}

// claim returns the entry for key and whether the caller is the first to
// claim it, in which case it must call settle.
func (p *replays) claim(key string, until time.Time, now time.Time) (*replay, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[key]; ok && now.Before(e.until) {
		return e, false
	}
	if p.m == nil {
		p.m = map[string]*replay{}
	}
	if len(p.m) >= p.max {
		p.prune(now)
	}
	e := &replay{done: make(chan struct{}), until: until}
	p.m[key] = e
	return e, true
}

// settle records the answer to e's decision. An answer that says nothing
// happened and trying again may help (a time-out, a refusal before the
// decision was taken) forgets the key, so that a retry is a new decision.
func (p *replays) settle(key string, e *replay, res Outcome, keep bool) {
	e.res = res
	close(e.done)
	if !keep {
		p.mu.Lock()
		if p.m[key] == e {
			delete(p.m, key)
		}
		p.mu.Unlock()
	}
}

// wait returns the first answer to e's decision, or false if ctx ends first.
func (e *replay) wait(ctx context.Context) (Outcome, bool) {
	select {
	case <-e.done:
		return e.res, true
	case <-ctx.Done():
		return Outcome{}, false
	}
}

// prune drops expired entries, and the oldest half if none expired.
func (p *replays) prune(now time.Time) {
	for k, e := range p.m {
		if !now.Before(e.until) {
			delete(p.m, k)
		}
	}
	if len(p.m) < p.max {
		return
	}
	n := 0
	for k, e := range p.m {
		select {
		case <-e.done:
		default:
			continue // under way: keep
		}
		delete(p.m, k)
		if n++; n >= p.max/2 {
			break
		}
	}
}
