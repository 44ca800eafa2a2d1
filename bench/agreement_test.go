package bench

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/deploykit/deploy/flags"
)

// waitFor polls until cond holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond)
	}
	return true
}

// TestFlagdAgreesWithProvider writes a flag with flags.FlagdFile, reads it with
// OpenFeature's flagd provider (in-process, file source), and checks that every
// one of 100,000 keys gets the same answer from flagd as from flags.Provider.
func TestFlagdAgreesWithProvider(t *testing.T) {
	keys := uuids(100_000, 1)
	ecs := contexts(keys)
	ctx := t.Context()
	ff, client := flagdFile(t, 0)
	p, err := flags.NewProvider(flags.BoolFlag(flagKey, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, share := range []float64{0.25, 0.50} {
		if err := ff.SetShare(ctx, flagKey, share); err != nil {
			t.Fatal(err)
		}
		if err := p.SetShare(ctx, flagKey, share); err != nil {
			t.Fatal(err)
		}
		// Wait until flagd serves the new share to a sample of keys.
		if !waitFor(10*time.Second, func() bool {
			for i := range 2000 {
				if client.Boolean(ctx, flagKey, false, ecs[i]) != p.Enabled(flagKey, keys[i]) {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("flagd did not pick up share %v within 10 s", share)
		}
		on, disagree := 0, 0
		for i, key := range keys {
			d, err := client.BooleanValueDetails(ctx, flagKey, false, ecs[i])
			if err != nil {
				t.Fatalf("flagd evaluation of %s: %v", key, err)
			}
			if d.Value != p.Enabled(flagKey, key) {
				if disagree < 5 {
					t.Errorf("share %v: key %s: flagd %v (variant %s, reason %s), flags.Provider %v (bucket %d)",
						share, key, d.Value, d.Variant, d.Reason, !d.Value, flags.Bucket(flagKey, key))
				}
				disagree++
			}
			if d.Value {
				on++
			}
		}
		t.Logf("share %v: flagd serves on to %d of %d keys (%.3f %%); %d disagreements", share, on, len(keys), 100*float64(on)/float64(len(keys)), disagree)
		if disagree > 0 {
			t.Errorf("share %v: %d of %d keys disagree", share, disagree, len(keys))
		}
	}

	// Without a targeting key flagd serves the default variant, off, like the Provider.
	d, _ := client.BooleanValueDetails(ctx, flagKey, true, openfeature.NewTargetlessEvaluationContext(nil))
	t.Logf("flagd without targeting key: value %v, variant %q, reason %s, error %q", d.Value, d.Variant, d.Reason, d.ErrorCode)
	if d.Value {
		t.Errorf("flagd without a targeting key serves on")
	}
}

// TestFlagdPickupLatency measures how long flagd's file watcher takes to serve a
// share written by flags.FlagdFile (an atomic rename). Real time: it exercises
// a real file watcher; each trial is bounded.
func TestFlagdPickupLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("real file watcher")
	}
	ctx := t.Context()
	ff, client := flagdFile(t, 0.25)
	// A key that is on at 50 % and off at 25 %.
	var probe openfeature.EvaluationContext
	for _, k := range uuids(1000, 2) {
		if b := flags.Bucket(flagKey, k); b >= 2500 && b < 5000 {
			probe = openfeature.NewEvaluationContext(k, nil)
			break
		}
	}
	const trials = 30
	var lat []time.Duration
	for i := range trials {
		share, want := 0.50, true
		if i%2 == 1 {
			share, want = 0.25, false
		}
		if err := ff.SetShare(ctx, flagKey, share); err != nil {
			t.Fatal(err)
		}
		written := time.Now()
		// Poll without sleeping (yielding to flagd's goroutines), bounded.
		for client.Boolean(ctx, flagKey, !want, probe) != want {
			if time.Since(written) > 5*time.Second {
				t.Fatalf("trial %d: flagd did not pick up share %v within 5 s", i, share)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(written))
		// Let the watcher settle before the next write.
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("latencies in trial order: %v", lat)
	slices.Sort(lat)
	t.Logf("flagd pick-up after rename, %d trials: p50 %v, p90 %v, max %v", trials, lat[trials/2], lat[trials*9/10], lat[trials-1])
}
