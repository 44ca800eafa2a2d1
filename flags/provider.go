package flags

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-feature/go-sdk/openfeature"
)

// ProviderName is the name the Provider reports in its OpenFeature metadata and
// events.
const ProviderName = "deploykit-flags"

// eventBuffer is how many configuration-change events wait for the SDK before
// the oldest pending ones are merged into the newest.
const eventBuffer = 8

var (
	_ openfeature.FeatureProvider = (*Provider)(nil)
	_ openfeature.StateHandler    = (*Provider)(nil)
	_ openfeature.EventHandler    = (*Provider)(nil)
)

// Provider is an in-process OpenFeature provider that serves rollout flags, and
// the [Controller] that ramps them.
//
// Evaluations are lock-free: they read an immutable snapshot of the flags through
// an atomic pointer, and a boolean evaluation does not allocate. Writes (Define,
// SetShare) are serialised, copy the snapshot, swap it in, and emit a
// PROVIDER_CONFIGURATION_CHANGED event naming the changed flag. All methods are
// safe for concurrent use.
//
// The zero value is not usable; call [NewProvider].
type Provider struct {
	snap   atomic.Pointer[snapshot]
	mu     sync.Mutex // serialises writers and event sends
	events chan openfeature.Event
}

// snapshot is the immutable set of flags served at one moment.
type snapshot struct {
	flags map[string]*rollout
}

// rollout is a normalized flag, ready to evaluate.
type rollout struct {
	flag   Flag
	weight uint32 // buckets that get On: [0, weight)
	kind   kind
}

// NewProvider returns a Provider serving flags. It returns an error wrapping
// [ErrInvalid] if a flag is invalid (see [Flag.Validate]) or two flags share a key.
func NewProvider(flags ...Flag) (*Provider, error) {
	s := &snapshot{flags: make(map[string]*rollout, len(flags))}
	for _, f := range flags {
		r, err := newRollout(f)
		if err != nil {
			return nil, err
		}
		if _, dup := s.flags[f.Key]; dup {
			return nil, fmt.Errorf("%w: flag %q is defined twice", ErrInvalid, f.Key)
		}
		s.flags[f.Key] = r
	}
	p := &Provider{events: make(chan openfeature.Event, eventBuffer)}
	p.snap.Store(s)
	return p, nil
}

func newRollout(f Flag) (*rollout, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	return &rollout{flag: f, weight: weight(f.Share), kind: kindOf(f.On.Value)}, nil
}

// Define adds flag, or replaces the flag with the same key, and emits a
// PROVIDER_CONFIGURATION_CHANGED event. It returns an error wrapping [ErrInvalid]
// if the flag is invalid.
func (p *Provider) Define(ctx context.Context, flag Flag) error {
	r, err := newRollout(flag)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swap(r)
	return nil
}

// SetShare sets the share of targeting keys that get flagKey's on variant,
// rounded to the nearest bucket (see [Buckets]). Raising the share keeps every
// exposed key exposed. If the served share changes, SetShare emits a
// PROVIDER_CONFIGURATION_CHANGED event naming flagKey.
func (p *Provider) SetShare(ctx context.Context, flagKey string, share float64) error {
	if err := validateKey(flagKey); err != nil {
		return err
	}
	if err := validateShare(flagKey, share); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.snap.Load().flags[flagKey]
	if !ok {
		return fmt.Errorf("%w: %q", ErrFlagNotFound, flagKey)
	}
	r := *old
	r.flag.Share = share
	r.weight = weight(share)
	if r.weight == old.weight {
		// Same buckets served: record the share as given, but nothing changed
		// for any user, so no event.
		p.store(&r)
		return nil
	}
	p.swap(&r)
	return nil
}

// Share returns the share of targeting keys that get flagKey's on variant, as
// served: a whole number of buckets divided by [Buckets].
func (p *Provider) Share(ctx context.Context, flagKey string) (float64, error) {
	r, ok := p.snap.Load().flags[flagKey]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrFlagNotFound, flagKey)
	}
	return float64(r.weight) / Buckets, nil
}

// Flag returns the definition of flagKey as last set, and whether it exists.
func (p *Provider) Flag(flagKey string) (Flag, bool) {
	r, ok := p.snap.Load().flags[flagKey]
	if !ok {
		return Flag{}, false
	}
	return r.flag, true
}

// store replaces one flag in a new snapshot. p.mu must be held.
func (p *Provider) store(r *rollout) {
	old := p.snap.Load()
	next := &snapshot{flags: maps.Clone(old.flags)}
	if next.flags == nil {
		next.flags = make(map[string]*rollout, 1)
	}
	next.flags[r.flag.Key] = r
	p.snap.Store(next)
}

// swap stores r and emits a change event for it. p.mu must be held.
func (p *Provider) swap(r *rollout) {
	p.store(r)
	p.emit(r.flag.Key)
}

// emit sends a configuration-change event without ever blocking: when the
// buffer is full (nobody is draining the channel, for example before the
// provider is registered), the oldest pending event is taken out and its flag
// keys are merged into the new event, so no change goes unreported. p.mu must be
// held, which makes the SDK's reader the only other party on the channel.
func (p *Provider) emit(flagKey string) {
	ev := openfeature.Event{
		ProviderName: ProviderName,
		EventType:    openfeature.ProviderConfigChange,
		ProviderEventDetails: openfeature.ProviderEventDetails{
			Message:     "flag configuration changed",
			FlagChanges: []string{flagKey},
		},
	}
	for {
		select {
		case p.events <- ev:
			return
		default:
		}
		select {
		case old := <-p.events:
			keys := append(slices.Clone(old.FlagChanges), ev.FlagChanges...)
			slices.Sort(keys)
			ev.FlagChanges = slices.Compact(keys)
			ev.Message = "flag configuration changed (coalesced)"
		default:
		}
	}
}

// Enabled reports whether targetingKey gets flagKey's on variant. It is false
// for an unknown flag and for an empty targeting key. It is the fast path of
// BooleanEvaluation: lock-free and without allocation.
func (p *Provider) Enabled(flagKey, targetingKey string) bool {
	r, ok := p.snap.Load().flags[flagKey]
	return ok && targetingKey != "" && r.on(flagKey, targetingKey)
}

func (r *rollout) on(flagKey, targetingKey string) bool {
	switch r.weight {
	case 0:
		return false
	case Buckets:
		return true
	}
	return Bucket(flagKey, targetingKey) < r.weight
}

// Metadata returns the provider's name, [ProviderName].
func (p *Provider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: ProviderName}
}

// Hooks returns no hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// Init is called by the OpenFeature SDK when the provider is registered. The
// flags are in memory, so the provider is ready at once.
func (p *Provider) Init(openfeature.EvaluationContext) error { return nil }

// Shutdown is called by the OpenFeature SDK when the provider is replaced or the
// API shuts down. It does nothing: the provider keeps serving its flags and may
// be registered again.
func (p *Provider) Shutdown() {}

// EventChannel returns the channel of PROVIDER_CONFIGURATION_CHANGED events, one
// per change, each naming the changed flag in FlagChanges. Events that nobody
// reads are merged, never block a writer, and are never lost: the channel holds
// at most a few events, the oldest merged into newer ones.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// resolve evaluates flagKey for the evaluation context. On success it returns the
// variant served and a zero ResolutionError.
func (p *Provider) resolve(flagKey string, want kind, flatCtx openfeature.FlattenedContext) (Variant, openfeature.ProviderResolutionDetail, bool) {
	r, ok := p.snap.Load().flags[flagKey]
	if !ok {
		return Variant{}, openfeature.ProviderResolutionDetail{
			ResolutionError: openfeature.NewFlagNotFoundResolutionError(fmt.Sprintf("flag %q not found", flagKey)),
			Reason:          openfeature.ErrorReason,
		}, false
	}
	if want != kindObject && r.kind != want {
		return Variant{}, openfeature.ProviderResolutionDetail{
			ResolutionError: openfeature.NewTypeMismatchResolutionError(fmt.Sprintf("flag %q has %T variants", flagKey, r.flag.On.Value)),
			Reason:          openfeature.ErrorReason,
		}, false
	}
	tk, _ := flatCtx[openfeature.TargetingKey].(string)
	if tk == "" {
		return r.flag.Off, openfeature.ProviderResolutionDetail{
			ResolutionError: openfeature.NewTargetingKeyMissingResolutionError("flag " + flagKey + " is a percentage rollout: the evaluation context needs a targeting key to bucket by; serving the off variant"),
			Reason:          openfeature.ErrorReason,
			Variant:         r.flag.Off.Name,
		}, true
	}
	v := r.flag.Off
	if r.on(flagKey, tk) {
		v = r.flag.On
	}
	reason := openfeature.SplitReason
	if r.weight == 0 || r.weight == Buckets {
		reason = openfeature.StaticReason
	}
	return v, openfeature.ProviderResolutionDetail{Reason: reason, Variant: v.Name}, true
}

// BooleanEvaluation evaluates a boolean rollout flag. Without a targeting key it
// returns the off variant with TARGETING_KEY_MISSING (the SDK then hands the
// caller its default value); an unknown flag is FLAG_NOT_FOUND and a flag with
// non-boolean variants TYPE_MISMATCH. It does not allocate on success.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	v, d, ok := p.resolve(flag, kindBool, flatCtx)
	if !ok {
		return openfeature.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return openfeature.BoolResolutionDetail{Value: v.Value.(bool), ProviderResolutionDetail: d}
}

// StringEvaluation evaluates a rollout flag with string variants, with the same
// errors as BooleanEvaluation.
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	v, d, ok := p.resolve(flag, kindString, flatCtx)
	if !ok {
		return openfeature.StringResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return openfeature.StringResolutionDetail{Value: v.Value.(string), ProviderResolutionDetail: d}
}

// FloatEvaluation evaluates a rollout flag with float64 variants, with the same
// errors as BooleanEvaluation.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, flatCtx openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	v, d, ok := p.resolve(flag, kindFloat, flatCtx)
	if !ok {
		return openfeature.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return openfeature.FloatResolutionDetail{Value: v.Value.(float64), ProviderResolutionDetail: d}
}

// IntEvaluation evaluates a rollout flag with int64 variants, with the same
// errors as BooleanEvaluation.
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, flatCtx openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	v, d, ok := p.resolve(flag, kindInt, flatCtx)
	if !ok {
		return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return openfeature.IntResolutionDetail{Value: v.Value.(int64), ProviderResolutionDetail: d}
}

// ObjectEvaluation evaluates a rollout flag of any variant type and returns the
// variant's value as is, with the same errors as BooleanEvaluation except
// TYPE_MISMATCH.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, flatCtx openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	v, d, ok := p.resolve(flag, kindObject, flatCtx)
	if !ok {
		return openfeature.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return openfeature.InterfaceResolutionDetail{Value: v.Value, ProviderResolutionDetail: d}
}
