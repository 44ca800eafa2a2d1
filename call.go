package deploy

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/deploykit/deploy/internal/redact"
)

// PanicError is a panic in code the runner called — a strategy's Plan,
// Apply or Rollback, a gate, a monitor, a notifier, a rollback step —
// turned into an error. The release goes on as for any error of that call:
// a panicking Apply rolls back, a panicking monitor counts as a
// metric-source error, a panicking notifier is a failed delivery. The
// stack is kept in the release's timeline and on the span.
type PanicError struct {
	// Call names what panicked ("step deploy/5%: Apply", "monitor prometheus").
	Call string
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return redact.Text(fmt.Sprintf("%s panicked: %v", e.Call, e.Value))
}

// TimeoutError is a call into user code that did not return within its
// bound. The runner stops waiting for it and goes on as for any error of
// that call; the call itself may still be running. It matches
// context.DeadlineExceeded.
type TimeoutError struct {
	Call    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not return within %v", e.Call, e.Timeout)
}

// Is makes a TimeoutError match context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// bounded calls fn with a context that ends after timeout (or when ctx
// ends), and returns its result, or a *PanicError if it panicked, or a
// *TimeoutError if it did not return within timeout — fn is then left to
// finish on its own, and its result is dropped. When ctx ends first, fn's
// context ends too, but bounded still waits for fn up to timeout: an
// effect that is told to stop must stop before anything else is done. It
// never panics.
func bounded[T any](ctx context.Context, call string, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	c := launch(ctx, call, timeout, fn)
	defer c.stop()
	if res, ok := c.answered(); ok {
		return c.result(ctx, res)
	}
	select {
	case res := <-c.done:
		return c.result(ctx, res)
	case <-c.arm().C:
		if res, ok := c.answered(); ok {
			return c.result(ctx, res) // it answered as its time ran out
		}
		var zero T
		return zero, &TimeoutError{Call: call, Timeout: timeout}
	}
}

// running is a call launched by launch.
type running[T any] struct {
	call    string
	timeout time.Duration
	cctx    context.Context
	cancel  context.CancelCauseFunc
	cancelT context.CancelFunc
	done    chan callResult[T]
	start   time.Time
	timer   *time.Timer // armed by arm, for a call that did not answer at once
}

type callResult[T any] struct {
	v   T
	err error
}

// launch starts fn in its own goroutine under a context that ends after
// timeout or when ctx (or the returned cancel) ends, recovering a panic
// into a *PanicError. The caller takes an answer that came at once
// (answered), else waits on done and arm's timer; it calls stop.
func launch[T any](ctx context.Context, call string, timeout time.Duration, fn func(context.Context) (T, error)) *running[T] {
	pctx, cancel := context.WithCancelCause(ctx)
	cctx, cancelT := context.WithTimeout(pctx, timeout) // fn sees its deadline
	c := &running[T]{call: call, timeout: timeout, cctx: cctx, cancel: cancel, cancelT: cancelT, done: make(chan callResult[T], 1), start: time.Now()}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				var zero T
				c.done <- callResult[T]{zero, &PanicError{Call: call, Value: v, Stack: debug.Stack()}}
			}
		}()
		v, err := fn(cctx)
		c.done <- callResult[T]{v, err}
	}()
	return c
}

// answered lets the call run and returns its answer if it came at once, as
// most do (a no-op Apply, a gate that reads a flag): no timer is armed for
// them. Asked again when the call's time is up, it gives a call woken at
// that same moment the chance to deliver its answer, which then counts.
func (c *running[T]) answered() (callResult[T], bool) { return answeredNow(c.done) }

// answeredNow yields to the goroutine that answers on done, then takes its
// answer if it came, without waiting: the one step of every bounded call
// that spares a timer when the call answers at once, and gives a call woken
// as its time runs out the chance to count.
func answeredNow[T any](done <-chan callResult[T]) (callResult[T], bool) {
	runtime.Gosched()
	select {
	case res := <-done:
		return res, true
	default:
		return callResult[T]{}, false
	}
}

// arm starts the timer that fires when the call's time, counted from its
// start, is up.
func (c *running[T]) arm() *time.Timer {
	if c.timer == nil {
		c.timer = time.NewTimer(time.Until(c.start.Add(c.timeout)))
	}
	return c.timer
}

// stop ends the call's context and timer.
func (c *running[T]) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.cancelT()
	c.cancel(nil)
}

// result is the call's outcome once it returned: a call that gave up at
// its own deadline and said so is a *TimeoutError; any other error comes
// back redacted (see userError).
func (c *running[T]) result(ctx context.Context, res callResult[T]) (T, error) {
	if res.err != nil && ctx.Err() == nil && errors.Is(c.cctx.Err(), context.DeadlineExceeded) && errors.Is(res.err, context.DeadlineExceeded) {
		return res.v, &TimeoutError{Call: c.call, Timeout: c.timeout}
	}
	return res.v, userError(res.err)
}

// userError redacts an error that came from code the runner called, so
// that no URL credential, query value or token in it reaches the record,
// the report, a span, a log or a returned error; errors.Is and errors.As
// still see the original.
func userError(err error) error {
	if err == nil {
		return nil
	}
	var pe *PanicError
	var te *TimeoutError
	if errors.As(err, &pe) || errors.As(err, &te) {
		return err // their messages are redacted already
	}
	return redact.Error(err) // a RetryAt error stays one: errors.As sees through
}

// boundedErr is bounded for calls that return only an error.
func boundedErr(ctx context.Context, call string, timeout time.Duration, fn func(context.Context) error) error {
	_, err := bounded(ctx, call, timeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// safely calls fn, which must be quick (a Name or a Validate method),
// turning a panic into a *PanicError.
func safely(call string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Call: call, Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
