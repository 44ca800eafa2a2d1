package deploy

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context an observer gives its monitor: its parent's
// values, a deadline that is the call's bound, and a Done channel closed
// when the call is given up (its bound passed) or its parent ends. Unlike
// context.WithTimeout it is made once per observer and re-armed for each
// call, so that a week of looks a minute apart costs no context and no
// timer per look. It is valid for the duration of one call, as every
// context a monitor gets.
type callCtx struct {
	context.Context // the parent, for Value

	mu       sync.Mutex
	deadline time.Time
	done     chan struct{}
	err      error
	stop     func() bool // stops the watch of the parent
}

// newCallCtx returns a context under parent, with Done closed when parent
// ends.
func newCallCtx(parent context.Context) *callCtx {
	c := &callCtx{Context: parent, done: make(chan struct{})}
	c.stop = context.AfterFunc(parent, func() { c.end(context.Cause(parent)) })
	return c
}

// arm sets the deadline of the next call.
func (c *callCtx) arm(deadline time.Time) {
	c.mu.Lock()
	c.deadline = deadline
	c.mu.Unlock()
}

// end closes Done with err, once.
func (c *callCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// release stops watching the parent.
func (c *callCtx) release() { c.stop() }

func (c *callCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

func (c *callCtx) Done() <-chan struct{} { return c.done }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
