package flags

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Errors returned by the Provider and FlagdFile. Check them with [errors.Is].
var (
	// ErrInvalid is returned by SetShare, Define and NewProvider when an argument is
	// invalid: an empty flag key, a share that is NaN or outside [0, 1], a variant
	// without a name or value. Nothing is changed when it is returned.
	ErrInvalid = errors.New("flags: invalid argument")

	// ErrFlagNotFound is returned by SetShare and Share for a flag that was never
	// defined (with NewProvider or Define).
	ErrFlagNotFound = errors.New("flags: flag not found")

	// ErrNotRollout is returned by FlagdFile.SetShare and FlagdFile.Share for a flag
	// that exists in the file but whose targeting is not the two-variant
	// "fractional" rule that Define writes, so it has no share to read or set.
	ErrNotRollout = errors.New("flags: flag is not a two-variant fractional rollout")

	// ErrMalformed is returned by FlagdFile when the existing flag file is not a
	// flagd flag-definition document (not JSON, not an object, "flags" not an
	// object…). The file is left as it was.
	ErrMalformed = errors.New("flags: malformed flagd file")
)

// Controller is the write side of a percentage rollout: it sets, and reads back, the
// share of users that get a flag's on variant. OpenFeature has no write API, so a
// strategy that ramps a flag holds a Controller for writing and an OpenFeature
// client for checking what users actually get.
//
// Implementations are safe for concurrent use. SetShare returns an error wrapping
// [ErrInvalid] for an empty key or a share that is NaN or outside [0, 1] (nothing is
// changed), and one wrapping [ErrFlagNotFound] for a flag that was never defined.
// Share returns the share being served, rounded to a whole number of buckets (see
// [Buckets]).
//
// Implemented by [*Provider] (in-process) and [*FlagdFile] (a flagd flag file).
type Controller interface {
	SetShare(ctx context.Context, flagKey string, share float64) error
	Share(ctx context.Context, flagKey string) (float64, error)
}

var (
	_ Controller = (*Provider)(nil)
	_ Controller = (*FlagdFile)(nil)
)

// Variant is one value a flag serves, with the name OpenFeature reports as the
// resolution's variant (and flagd uses as the variant key).
//
// Value is a bool, a string, an int64, a float64, or (for object flags) any value
// that encodes to JSON. Other integer and float types are converted to int64 and
// float64 when the flag is defined.
type Variant struct {
	Name  string
	Value any
}

// Flag defines a rollout flag: users in the first Share of the buckets get On, the
// others get Off. A share of 0.25 serves On to 25 % of targeting keys.
type Flag struct {
	Key   string
	Off   Variant
	On    Variant
	Share float64
}

// BoolFlag returns a boolean rollout flag whose variants are "off" (false) and
// "on" (true).
func BoolFlag(key string, share float64) Flag {
	return Flag{
		Key:   key,
		Off:   Variant{Name: "off", Value: false},
		On:    Variant{Name: "on", Value: true},
		Share: share,
	}
}

// Validate reports whether f can be served: a non-empty key, a share in [0, 1],
// two differently named variants whose values have the same type. The error
// wraps [ErrInvalid] and names the field and its value.
func (f Flag) Validate() error {
	_, err := f.normalize()
	return err
}

// normalize validates f and converts its variant values to the canonical types.
func (f Flag) normalize() (Flag, error) {
	if err := validateKey(f.Key); err != nil {
		return f, err
	}
	if err := validateShare(f.Key, f.Share); err != nil {
		return f, err
	}
	var err error
	if f.Off, err = normalizeVariant(f.Key, "Off", f.Off); err != nil {
		return f, err
	}
	if f.On, err = normalizeVariant(f.Key, "On", f.On); err != nil {
		return f, err
	}
	if f.On.Name == f.Off.Name {
		return f, fmt.Errorf("%w: flag %q: On.Name and Off.Name are both %q; the variants need different names", ErrInvalid, f.Key, f.On.Name)
	}
	if kindOf(f.On.Value) != kindOf(f.Off.Value) {
		return f, fmt.Errorf("%w: flag %q: On.Value (%T) and Off.Value (%T) have different types", ErrInvalid, f.Key, f.On.Value, f.Off.Value)
	}
	return f, nil
}

func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: flag key is empty", ErrInvalid)
	}
	return nil
}

func validateShare(key string, share float64) error {
	if math.IsNaN(share) || share < 0 || share > 1 {
		return fmt.Errorf("%w: share %v for flag %q: must be a number in [0, 1]", ErrInvalid, share, key)
	}
	return nil
}

func normalizeVariant(key, field string, v Variant) (Variant, error) {
	if v.Name == "" {
		return v, fmt.Errorf("%w: flag %q: %s.Name is empty", ErrInvalid, key, field)
	}
	switch x := v.Value.(type) {
	case nil:
		return v, fmt.Errorf("%w: flag %q: %s.Value is nil", ErrInvalid, key, field)
	case int:
		v.Value = int64(x)
	case int8:
		v.Value = int64(x)
	case int16:
		v.Value = int64(x)
	case int32:
		v.Value = int64(x)
	case uint8:
		v.Value = int64(x)
	case uint16:
		v.Value = int64(x)
	case uint32:
		v.Value = int64(x)
	case float32:
		v.Value = float64(x)
	}
	return v, nil
}

// kind is the OpenFeature type of a normalized variant value.
type kind uint8

const (
	kindObject kind = iota
	kindBool
	kindString
	kindInt
	kindFloat
)

func kindOf(v any) kind {
	switch v.(type) {
	case bool:
		return kindBool
	case string:
		return kindString
	case int64:
		return kindInt
	case float64:
		return kindFloat
	}
	return kindObject
}
