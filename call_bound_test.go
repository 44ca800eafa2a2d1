package deploy

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// A bounded call's answer counts up to its bound, measured from the call's
// start, whether it comes at once or later; one that comes after the bound
// is a *TimeoutError, and a panic is a *PanicError either way.
func TestBoundedCallAnswersWithinItsBound(t *testing.T) {
	const bound = time.Second
	for _, tc := range []struct {
		name    string
		after   time.Duration // how long the call takes; < 0 panics at once
		timeout bool
	}{
		{"at once", 0, false},
		{"just inside the bound", bound - time.Nanosecond, false},
		{"just past the bound", bound + time.Nanosecond, true},
		{"a panic at once", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				v, err := bounded(t.Context(), "call", bound, func(ctx context.Context) (int, error) {
					if tc.after < 0 {
						panic("boom")
					}
					select {
					case <-time.After(tc.after):
						return 7, nil
					case <-ctx.Done(): // given up: the bubble must end
						return 0, ctx.Err()
					}
				})
				var te *TimeoutError
				var pe *PanicError
				switch {
				case tc.timeout:
					if !errors.As(err, &te) || time.Since(start) != bound {
						t.Fatalf("got %v, %v after %v; want a TimeoutError after %v", v, err, time.Since(start), bound)
					}
				case tc.after < 0:
					if !errors.As(err, &pe) {
						t.Fatalf("got %v, %v; want a PanicError", v, err)
					}
				default:
					if err != nil || v != 7 {
						t.Fatalf("got %v, %v; want 7", v, err)
					}
				}
			})
		})
	}
}

// A monitor's answer counts up to the observe bound, from the call's
// start; past it the look is a *TimeoutError, and the next look starts a
// new goroutine for the monitor, which answers again.
func TestObserverAnswersWithinItsBound(t *testing.T) {
	const bound = time.Second
	synctest.Test(t, func(t *testing.T) {
		var take time.Duration
		o := newObserver(monitor.Func(func(ctx context.Context, _ monitor.Target) (monitor.Observation, error) {
			select {
			case <-time.After(take):
			case <-ctx.Done(): // given up: the bubble must end
				return monitor.Observation{}, ctx.Err()
			}
			var obs monitor.Observation
			obs.Set("x", monitor.Value(1, 1))
			return obs, nil
		}), "m")
		defer o.stop()
		for _, tc := range []struct {
			take    time.Duration
			timeout bool
		}{{0, false}, {bound - time.Nanosecond, false}, {bound + time.Nanosecond, true}, {0, false}} {
			take = tc.take
			start := time.Now()
			obs, err := o.observe(t.Context(), monitor.Target{}, bound)
			var te *TimeoutError
			if tc.timeout != errors.As(err, &te) || !tc.timeout && !obs.Metric("x").HasData() {
				t.Fatalf("a monitor taking %v: %v, %v after %v", tc.take, obs, err, time.Since(start))
			}
			synctest.Wait()
		}
	})
}
