package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDelayDoublesUpToTheCapLessJitter(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Minute, Jitter: DefaultJitter}
	for range 200 {
		for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 1000: 5 * time.Minute} {
			if got := b.Delay(n); got > want || got < want*8/10 {
				t.Fatalf("Delay(%d) = %v, want %v less at most 20%%", n, got, want)
			}
		}
	}
	exact := Backoff{Initial: time.Second, Max: time.Minute}
	if got := exact.Delay(3); got != 4*time.Second {
		t.Errorf("Delay(3) without jitter = %v, want 4s", got)
	}
	if got := (Backoff{Initial: time.Hour}).Delay(200); got <= 0 {
		t.Errorf("Delay(200) with no cap = %v, want no overflow", got)
	}
}

// asking is an error that asks to wait, like an HTTP 429 with Retry-After.
type asking time.Duration

func (a asking) Error() string             { return "429 Too Many Requests" }
func (a asking) RetryAfter() time.Duration { return time.Duration(a) }

func TestWaitHonoursRetryAfterUpToMaxAsked(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Minute, MaxAsked: 15 * time.Minute, Jitter: DefaultJitter}
	for _, tc := range []struct {
		err    error
		lo, hi time.Duration
	}{
		{asking(3 * time.Minute), 3 * time.Minute, 3 * time.Minute},
		{errors.Join(errors.New("wrapped"), asking(time.Hour)), 15 * time.Minute, 15 * time.Minute},
		{asking(-time.Minute), 800 * time.Millisecond, time.Second},
		{errors.New("plain"), 800 * time.Millisecond, time.Second},
	} {
		if got := b.Wait(1, tc.err); got < tc.lo || got > tc.hi {
			t.Errorf("Wait(1, %v) = %v, want %v to %v", tc.err, got, tc.lo, tc.hi)
		}
	}
}

func TestParseRetryAfterSecondsAndDates(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":        0,
		"120":     2 * time.Minute,
		" 5 ":     5 * time.Second,
		"0":       0,
		"-3":      0,
		"soon":    0,
		"9999999": 24 * time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := ParseRetryAfter(h, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestDoRetriesUntilSuccessFinalOrAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Initial: time.Second}
		start := time.Now()
		var at []time.Duration
		n, err := Do(t.Context(), b, 5, func(context.Context) error {
			at = append(at, time.Since(start))
			if len(at) < 3 {
				return errors.New("busy")
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Errorf("Do = %d, %v; want 3, nil", n, err)
		}
		if diff := cmp.Diff([]time.Duration{0, time.Second, 3 * time.Second}, at); diff != "" {
			t.Errorf("attempt times (-want +got):\n%s", diff)
		}

		refused := errors.New("401 Unauthorized")
		n, err = Do(t.Context(), b, 5, func(context.Context) error { return Final(refused) })
		if err != refused || n != 1 {
			t.Errorf("Do with a final error = %d, %v; want 1, the error unmarked", n, err)
		}

		n, err = Do(t.Context(), b, 2, func(context.Context) error { return refused })
		if err != refused || n != 2 {
			t.Errorf("Do out of attempts = %d, %v; want 2, the last error", n, err)
		}
	})
}

func TestDoInterruptedWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		aborted := errors.New("release aborted")
		time.AfterFunc(500*time.Millisecond, func() { cancel(aborted) })
		busy := errors.New("busy")
		n, err := Do(ctx, Backoff{Initial: time.Second}, 3, func(context.Context) error { return busy })
		var in *Interrupted
		if n != 1 || !errors.As(err, &in) || in.Err != busy || !errors.Is(err, aborted) {
			t.Errorf("Do = %d, %v; want 1 and an *Interrupted with the last error and the cause", n, err)
		}
	})
}
