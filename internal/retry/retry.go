// Package retry is the project's one backoff: exponential, capped, with
// jitter, and honouring a receiver that asks to wait (Retry-After).
//
// [Backoff.Wait] computes the wait before the next attempt from the number
// of failed attempts so far, so a caller that persists its attempts (the
// runner's outbox) keeps its own schedule and still waits as everyone else
// does. [Do] is the loop for callers that try a few times in one call
// (gate.HTTP, monitor.Probe).
//
// Jitter shortens each wait by a random fraction of itself, drawn from
// math/rand/v2, so that many releases retrying one receiver spread out; a
// wait is never longer than the exponential schedule says, and the cap stays
// a cap. A Retry-After is honoured as asked, without jitter.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultJitter is the jitter of the project's backoffs: each wait is
// between 80 % and 100 % of the exponential schedule.
const DefaultJitter = 0.2

// Backoff is an exponential backoff: Initial after the first failed
// attempt, doubled after each further one, at most Max, each wait shortened
// by a random fraction of itself of up to Jitter.
type Backoff struct {
	// Initial is the wait after the first failed attempt.
	Initial time.Duration
	// Max caps the exponential wait; 0 means no cap.
	Max time.Duration
	// MaxAsked caps how long a failure may ask to wait (RetryAfter); 0
	// means no cap.
	MaxAsked time.Duration
	// Jitter, in [0, 1], is the largest fraction a wait is shortened by.
	Jitter float64
}

// Delay returns the wait after the n-th failed attempt (n >= 1): Initial
// times 2^(n-1), at most Max, shortened by jitter.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d > 0 && (b.Max <= 0 || d < b.Max) && d < 1<<61; i++ {
		d *= 2
	}
	if b.Max > 0 {
		d = min(d, b.Max)
	}
	if j := min(max(b.Jitter, 0), 1); j > 0 {
		d -= time.Duration(j * rand.Float64() * float64(d))
	}
	return d
}

// Wait returns the wait after the n-th failed attempt, which failed with
// err: Delay(n), or longer when err asks for it with a RetryAfter()
// time.Duration method (an HTTP 429 or 503 with Retry-After), that request
// capped at MaxAsked.
func (b Backoff) Wait(n int, err error) time.Duration {
	d := b.Delay(n)
	if asked := Asked(err); asked > 0 {
		if b.MaxAsked > 0 {
			asked = min(asked, b.MaxAsked)
		}
		d = max(d, asked)
	}
	return d
}

// Asked returns how long err asks to wait before the next attempt, through
// a RetryAfter() time.Duration method anywhere in its chain, or 0.
func Asked(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if err != nil && errors.As(err, &ra) {
		return max(ra.RetryAfter(), 0)
	}
	return 0
}

// ParseRetryAfter reads a Retry-After header: delay-seconds (at most a day)
// or an HTTP date. Nonsense and times in the past give 0.
func ParseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Final marks err as one that another attempt cannot help: [Do] stops and
// returns err (without the mark).
func Final(err error) error {
	if err == nil {
		return nil
	}
	return final{err}
}

type final struct{ error }

func (f final) Unwrap() error { return f.error }

// Interrupted is what [Do] returns when ctx ends while it waits between
// attempts: the last attempt's error and the context's cause.
type Interrupted struct {
	// Err is the last attempt's error.
	Err error
	// Cause is context.Cause of the context that ended.
	Cause error
}

func (e *Interrupted) Error() string {
	return e.Err.Error() + " (interrupted: " + e.Cause.Error() + ")"
}

// Unwrap returns the last attempt's error and the cause.
func (e *Interrupted) Unwrap() []error { return []error{e.Err, e.Cause} }

// Do calls op until it returns nil or a [Final] error, or has been called
// attempts times (at least once), waiting b.Wait between calls. It returns
// how many times op ran and op's last error. When ctx ends during a wait it
// returns at once, with an [*Interrupted] error.
func Do(ctx context.Context, b Backoff, attempts int, op func(ctx context.Context) error) (int, error) {
	for n := 1; ; n++ {
		err := op(ctx)
		if err == nil {
			return n, nil
		}
		var f final
		if errors.As(err, &f) {
			return n, f.error
		}
		if n >= attempts {
			return n, err
		}
		t := time.NewTimer(b.Wait(n, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return n, &Interrupted{Err: err, Cause: context.Cause(ctx)}
		case <-t.C:
		}
	}
}
