package deploy

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// observer calls one monitor from a goroutine of its own that lives as long
// as the loop, so that a look costs a channel round trip instead of a new
// goroutine (and its stack growing again). A call that outlives its
// timeout is given up: its goroutine is left to finish on its own and
// then exit, and the next look starts a new one.
type observer struct {
	m     monitor.Source
	call  string
	req   chan observeReq
	done  chan callResult[monitor.Observation]
	timer *time.Timer
	cctx  *callCtx // the monitor's context, re-armed for each call
}

type observeReq struct {
	ctx *callCtx
	t   monitor.Target
}

func newObserver(m monitor.Source, name string) *observer {
	o := &observer{m: m, call: "monitor " + name}
	o.start()
	return o
}

func (o *observer) start() {
	req := make(chan observeReq)
	done := make(chan callResult[monitor.Observation], 1)
	o.req, o.done = req, done
	go func() {
		for q := range req {
			done <- o.safeObserve(q)
		}
	}()
}

func (o *observer) safeObserve(q observeReq) (res callResult[monitor.Observation]) {
	defer func() {
		if v := recover(); v != nil {
			res = callResult[monitor.Observation]{err: &PanicError{Call: o.call, Value: v, Stack: debug.Stack()}}
		}
	}()
	obs, err := o.m.Observe(q.ctx, q.t)
	return callResult[monitor.Observation]{obs, err}
}

// observe calls the monitor for t, bounded by timeout. When ctx ends first
// the monitor's context ends too, but its answer is still awaited (up to
// timeout): what it measured at that moment, a breach say, is on the
// record before the cancellation is.
func (o *observer) observe(ctx context.Context, t monitor.Target, timeout time.Duration) (monitor.Observation, error) {
	if o.cctx == nil || o.cctx.Context != ctx || o.cctx.Err() != nil {
		// A context of its own for this parent, re-armed for each call.
		if o.cctx != nil {
			o.cctx.release()
		}
		o.cctx = newCallCtx(ctx)
	}
	cctx := o.cctx
	deadline := time.Now().Add(timeout)
	cctx.arm(deadline)
	o.req <- observeReq{cctx, t}
	// Most monitors answer at once (a cached value, an in-process
	// counter): let the observer run and take its answer without arming
	// the timer. The timer bounds the call from its start all the same.
	if res, ok := answeredNow(o.done); ok {
		return res.v, userError(res.err)
	}
	wait := time.Until(deadline)
	if o.timer == nil {
		o.timer = time.NewTimer(wait)
	} else {
		o.timer.Reset(wait)
	}
	select {
	case res := <-o.done:
		o.timer.Stop()
		return res.v, userError(res.err)
	case <-o.timer.C:
		// A monitor woken at the moment its time runs out gets the chance
		// to deliver its answer, which then counts.
		if res, ok := answeredNow(o.done); ok {
			return res.v, userError(res.err)
		}
		// Give the stuck goroutine up: it exits once its call returns, and
		// its context ends now.
		cctx.end(context.DeadlineExceeded)
		o.cctx = nil
		close(o.req)
		o.start()
		return monitor.Observation{}, &TimeoutError{Call: o.call, Timeout: timeout}
	}
}

// stop ends the observer's goroutine once its current call returns.
func (o *observer) stop() {
	close(o.req)
	if o.timer != nil {
		o.timer.Stop()
	}
	if o.cctx != nil {
		o.cctx.release()
	}
}
