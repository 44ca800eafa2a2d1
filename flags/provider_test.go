package flags_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/twmb/murmur3"

	"github.com/deploykit/deploy/flags"
)

const flagKey = "new-checkout"

// uuids returns n UUIDs from a seeded generator, so that every run tests the same keys.
func uuids(n int) []string {
	r := rand.New(rand.NewPCG(2024, 11))
	keys := make([]string, n)
	for i := range keys {
		var b [16]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		u, err := uuid.FromBytes(b[:])
		if err != nil {
			panic(err)
		}
		u[6] = (u[6] & 0x0f) | 0x40 // version 4
		u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
		keys[i] = u.String()
	}
	return keys
}

// newClient registers p with a new isolated OpenFeature API and returns a client.
func newClient(t *testing.T, p openfeature.FeatureProvider) (*openfeature.EvaluationAPI, *openfeature.Client) {
	t.Helper()
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return api, api.NewClient()
}

func mustProvider(t testing.TB, fs ...flags.Flag) *flags.Provider {
	t.Helper()
	p, err := flags.NewProvider(fs...)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// TestBucketIsMurmur3OfKeyThenTargetingKey checks Bucket against the murmur3
// library on the concatenated string, including keys longer than the stack buffer.
func TestBucketIsMurmur3OfKeyThenTargetingKey(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		fk := randString(r, r.IntN(40))
		tk := randString(r, r.IntN(80))
		if i%100 == 0 {
			tk = randString(r, 100+r.IntN(1100))
		}
		want := uint32((uint64(murmur3.StringSum32(fk+tk)) * flags.Buckets) >> 32)
		if got := flags.Bucket(fk, tk); got != want {
			t.Fatalf("Bucket(%q, %q) = %d, want %d", fk, tk, got, want)
		}
	}
	// Known value: flagd hashes "flagKey"+"targetingKey" with no separator.
	if got, want := flags.Bucket("ab", "c"), flags.Bucket("a", "bc"); got != want {
		t.Errorf(`Bucket("ab", "c") = %d, Bucket("a", "bc") = %d: want equal (no separator)`, got, want)
	}
}

func randString(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte(r.IntN(256)))
	}
	return b.String()
}

func TestStickiness(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0.5))
	_, client := newClient(t, p)
	other := mustProvider(t, flags.BoolFlag(flagKey, 0.5)) // another process, same flag
	ctx := t.Context()
	for _, key := range uuids(2000) {
		ec := openfeature.NewEvaluationContext(key, nil)
		first, err := client.BooleanValue(ctx, flagKey, false, ec)
		if err != nil {
			t.Fatalf("BooleanValue(%s): %v", key, err)
		}
		for range 3 {
			if got, _ := client.BooleanValue(ctx, flagKey, false, ec); got != first {
				t.Fatalf("key %s: got %v after %v", key, got, first)
			}
		}
		if got := other.Enabled(flagKey, key); got != first {
			t.Fatalf("key %s: another provider says %v, first said %v", key, got, first)
		}
	}
}

func TestMonotonicRamp(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0))
	_, client := newClient(t, p)
	ctx := t.Context()
	keys := uuids(100_000)
	exposed := make(map[string]bool)
	for _, share := range []float64{0.01, 0.05, 0.25, 0.50, 1} {
		if err := p.SetShare(ctx, flagKey, share); err != nil {
			t.Fatalf("SetShare(%v): %v", share, err)
		}
		n := 0
		for _, key := range keys {
			on, err := client.BooleanValue(ctx, flagKey, false, openfeature.NewEvaluationContext(key, nil))
			if err != nil {
				t.Fatalf("BooleanValue: %v", err)
			}
			if exposed[key] && !on {
				t.Fatalf("at %v %%: key %s was exposed before and is not any more", share*100, key)
			}
			if on {
				exposed[key] = true
				n++
			}
		}
		if got := float64(n) / float64(len(keys)); math.Abs(got-share) > 0.003 {
			t.Errorf("at %v %%: exposure %.3f %%, want within 0.3 points", share*100, got*100)
		}
	}
	if len(exposed) != len(keys) {
		t.Errorf("at 100 %%: %d of %d keys exposed", len(exposed), len(keys))
	}
}

func TestExposureAccuracy(t *testing.T) {
	keys := uuids(100_000)
	p := mustProvider(t, flags.BoolFlag(flagKey, 0))
	ctx := t.Context()
	for _, share := range []float64{0, 0.001, 0.01, 0.05, 0.10, 0.25, 0.333, 0.50, 0.75, 0.90, 0.99, 1} {
		if err := p.SetShare(ctx, flagKey, share); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, key := range keys {
			if p.Enabled(flagKey, key) {
				n++
			}
		}
		got := float64(n) / float64(len(keys))
		if math.Abs(got-share) > 0.003 {
			t.Errorf("share %v: exposure %.3f %%, want %.3f %% ± 0.3", share, got*100, share*100)
		}
	}
}

func TestShareRoundsToBuckets(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0))
	ctx := t.Context()
	for _, tc := range []struct{ set, want float64 }{
		{0.25, 0.25}, {0.12345, 0.1235}, {0.00004, 0}, {0.00005, 0.0001}, {1, 1},
	} {
		if err := p.SetShare(ctx, flagKey, tc.set); err != nil {
			t.Fatal(err)
		}
		got, err := p.Share(ctx, flagKey)
		if err != nil || got != tc.want {
			t.Errorf("after SetShare(%v): Share = %v, %v; want %v", tc.set, got, err, tc.want)
		}
	}
}

func TestEventsOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustProvider(t, flags.BoolFlag(flagKey, 0.05), flags.BoolFlag("other", 0))
		api := isolated.NewAPI()
		defer api.Shutdown(context.Background())
		ctx := t.Context()
		if err := api.SetProviderAndWait(ctx, p); err != nil {
			t.Fatal(err)
		}
		got := make(chan openfeature.EventDetails, 10)
		cb := func(d openfeature.EventDetails) { got <- d }
		api.AddHandler(openfeature.ProviderConfigChange, &cb)

		if err := p.SetShare(ctx, flagKey, 0.25); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := openfeature.EventDetails{
			ProviderName: flags.ProviderName,
			ProviderEventDetails: openfeature.ProviderEventDetails{
				Message:     "flag configuration changed",
				FlagChanges: []string{flagKey},
			},
		}
		select {
		case d := <-got:
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		case <-time.After(time.Second):
			t.Fatal("no PROVIDER_CONFIGURATION_CHANGED after SetShare")
		}

		// A share that rounds to the same buckets changes nothing: no event.
		if err := p.SetShare(ctx, flagKey, 0.250001); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case d := <-got:
			t.Errorf("unexpected event %+v for a change that serves the same buckets", d)
		default:
		}

		// Defining a flag is a change too.
		if err := p.Define(ctx, flags.BoolFlag("fresh", 0.5)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case d := <-got:
			if diff := cmp.Diff([]string{"fresh"}, d.FlagChanges); diff != "" {
				t.Errorf("FlagChanges (-want +got):\n%s", diff)
			}
		default:
			t.Fatal("no event after Define")
		}
	})
}

// TestEventsNeverBlockWriter changes flags many times with nobody reading the
// event channel: no SetShare blocks, and the pending events name every change.
func TestEventsNeverBlockWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fs []flags.Flag
		for i := range 50 {
			fs = append(fs, flags.BoolFlag(fmt.Sprintf("f%02d", i), 0))
		}
		p := mustProvider(t, fs...)
		ctx := t.Context()
		for round := range 20 {
			for _, f := range fs {
				if err := p.SetShare(ctx, f.Key, float64(round+1)/100); err != nil {
					t.Fatal(err)
				}
			}
		}
		seen := map[string]bool{}
		for done := false; !done; {
			select {
			case ev := <-p.EventChannel():
				if ev.EventType != openfeature.ProviderConfigChange {
					t.Errorf("event type %s", ev.EventType)
				}
				for _, k := range ev.FlagChanges {
					seen[k] = true
				}
			default:
				done = true
			}
		}
		if len(seen) != len(fs) {
			t.Errorf("pending events name %d flags, want %d", len(seen), len(fs))
		}
	})
}

func TestErrorCodes(t *testing.T) {
	p := mustProvider(t,
		flags.BoolFlag(flagKey, 1),
		flags.Flag{Key: "color", Off: flags.Variant{Name: "blue", Value: "blue"}, On: flags.Variant{Name: "green", Value: "green"}, Share: 1},
	)
	_, client := newClient(t, p)
	ctx := t.Context()

	type result struct {
		Value     any
		Variant   string
		Reason    openfeature.Reason
		ErrorCode openfeature.ErrorCode
		Err       bool
	}
	boolean := func(flag string, ec openfeature.EvaluationContext) result {
		d, err := client.BooleanValueDetails(ctx, flag, false, ec)
		return result{d.Value, d.Variant, d.Reason, d.ErrorCode, err != nil}
	}
	str := func(flag string, ec openfeature.EvaluationContext) result {
		d, err := client.StringValueDetails(ctx, flag, "default", ec)
		return result{d.Value, d.Variant, d.Reason, d.ErrorCode, err != nil}
	}
	user := openfeature.NewEvaluationContext("user-1", nil)
	for _, tc := range []struct {
		name string
		got  result
		want result
	}{
		{"bool on", boolean(flagKey, user), result{true, "on", openfeature.StaticReason, "", false}},
		{"string on", str("color", user), result{"green", "green", openfeature.StaticReason, "", false}},
		{"no targeting key", boolean(flagKey, openfeature.NewTargetlessEvaluationContext(nil)),
			result{false, "off", openfeature.ErrorReason, openfeature.TargetingKeyMissingCode, true}},
		{"unknown flag", boolean("nope", user), result{false, "", openfeature.ErrorReason, openfeature.FlagNotFoundCode, true}},
		{"bool of string flag", boolean("color", user), result{false, "", openfeature.ErrorReason, openfeature.TypeMismatchCode, true}},
		{"string of bool flag", str(flagKey, user), result{"default", "", openfeature.ErrorReason, openfeature.TypeMismatchCode, true}},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}

	// The provider itself serves the off variant without a targeting key.
	d := p.BooleanEvaluation(ctx, flagKey, true, openfeature.FlattenedContext{})
	if d.Value != false || d.ResolutionError.Error() == "" || !strings.Contains(d.ResolutionError.Error(), "targeting key") {
		t.Errorf("BooleanEvaluation without targeting key = %+v, want off with a TARGETING_KEY_MISSING error explaining why", d)
	}
}

func TestSplitReasonAndOtherTypes(t *testing.T) {
	p := mustProvider(t,
		flags.Flag{Key: "limit", Off: flags.Variant{Name: "low", Value: 10}, On: flags.Variant{Name: "high", Value: 100}, Share: 0.5},
		flags.Flag{Key: "ratio", Off: flags.Variant{Name: "a", Value: 0.1}, On: flags.Variant{Name: "b", Value: 0.9}, Share: 0.5},
		flags.Flag{Key: "cfg", Off: flags.Variant{Name: "old", Value: map[string]any{"v": 1}}, On: flags.Variant{Name: "new", Value: map[string]any{"v": 2}}, Share: 0.5},
	)
	_, client := newClient(t, p)
	ctx := t.Context()
	for _, key := range uuids(50) {
		ec := openfeature.NewEvaluationContext(key, nil)
		on := p.Enabled("limit", key)
		i, err := client.IntValueDetails(ctx, "limit", 0, ec)
		if err != nil || (i.Value == 100) != on || i.Reason != openfeature.SplitReason {
			t.Fatalf("IntValueDetails(%s) = %+v, %v; Enabled = %v", key, i, err, on)
		}
		f, err := client.FloatValue(ctx, "ratio", 0, ec)
		if err != nil || (f == 0.9) != p.Enabled("ratio", key) {
			t.Fatalf("FloatValue(%s) = %v, %v", key, f, err)
		}
		o, err := client.ObjectValue(ctx, "cfg", nil, ec)
		want := map[string]any{"v": 1}
		if p.Enabled("cfg", key) {
			want = map[string]any{"v": 2}
		}
		if diff := cmp.Diff(want, o); err != nil || diff != "" {
			t.Fatalf("ObjectValue(%s): err %v, (-want +got):\n%s", key, err, diff)
		}
	}
}

func TestValidation(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0.1))
	ctx := t.Context()
	for _, tc := range []struct {
		key   string
		share float64
		want  error
		msg   string
	}{
		{flagKey, math.NaN(), flags.ErrInvalid, "share NaN"},
		{flagKey, -0.01, flags.ErrInvalid, "share -0.01"},
		{flagKey, 1.5, flags.ErrInvalid, "share 1.5"},
		{flagKey, math.Inf(1), flags.ErrInvalid, "share +Inf"},
		{"", 0.5, flags.ErrInvalid, "flag key is empty"},
		{"missing", 0.5, flags.ErrFlagNotFound, `"missing"`},
	} {
		err := p.SetShare(ctx, tc.key, tc.share)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("SetShare(%q, %v) = %v, want %v mentioning %q", tc.key, tc.share, err, tc.want, tc.msg)
		}
	}
	if got, _ := p.Share(ctx, flagKey); got != 0.1 {
		t.Errorf("Share after rejected changes = %v, want 0.1", got)
	}
	for _, f := range []flags.Flag{
		{Key: "", Off: flags.Variant{Name: "a", Value: 1}, On: flags.Variant{Name: "b", Value: 2}},
		{Key: "k", Off: flags.Variant{Name: "a", Value: 1}, On: flags.Variant{Name: "a", Value: 2}},
		{Key: "k", Off: flags.Variant{Name: "a", Value: 1}, On: flags.Variant{Name: "b", Value: "x"}},
		{Key: "k", Off: flags.Variant{Name: "", Value: 1}, On: flags.Variant{Name: "b", Value: 2}},
		{Key: "k", Off: flags.Variant{Name: "a"}, On: flags.Variant{Name: "b", Value: 2}},
		{Key: "k", Off: flags.Variant{Name: "a", Value: 1}, On: flags.Variant{Name: "b", Value: 2}, Share: 2},
	} {
		if err := p.Define(ctx, f); !errors.Is(err, flags.ErrInvalid) {
			t.Errorf("Define(%+v) = %v, want ErrInvalid", f, err)
		}
	}
	if _, err := flags.NewProvider(flags.BoolFlag("a", 0), flags.BoolFlag("a", 1)); !errors.Is(err, flags.ErrInvalid) {
		t.Errorf("NewProvider with a duplicate key = %v, want ErrInvalid", err)
	}
}

func TestNoAllocations(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0.3))
	ctx := context.Background()
	flat := openfeature.FlattenedContext{openfeature.TargetingKey: "5f0c6d1e-8a0b-4c7e-9f7a-2a1b3c4d5e6f"}
	if n := testing.AllocsPerRun(1000, func() { p.Enabled(flagKey, "5f0c6d1e-8a0b-4c7e-9f7a-2a1b3c4d5e6f") }); n != 0 {
		t.Errorf("Enabled allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.BooleanEvaluation(ctx, flagKey, false, flat) }); n != 0 {
		t.Errorf("BooleanEvaluation allocates %v times", n)
	}
}

// TestConcurrentReadsAndWrites is for the race detector.
func TestConcurrentReadsAndWrites(t *testing.T) {
	p := mustProvider(t, flags.BoolFlag(flagKey, 0))
	_, client := newClient(t, p)
	ctx := t.Context()
	var wg sync.WaitGroup
	keys := uuids(200)
	for range 4 {
		wg.Go(func() {
			for _, k := range keys {
				client.BooleanValue(ctx, flagKey, false, openfeature.NewEvaluationContext(k, nil))
				p.Enabled(flagKey, k)
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			p.SetShare(ctx, flagKey, float64(i)/100)
			p.Define(ctx, flags.BoolFlag(fmt.Sprintf("f%d", i%5), 0.5))
		}
	})
	wg.Wait()
}

func BenchmarkEnabled(b *testing.B) {
	p := mustProvider(b, flags.BoolFlag(flagKey, 0.25))
	keys := uuids(4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Enabled(flagKey, keys[i&4095])
		i++
	}
}
