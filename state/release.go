package state

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by the errors of [Release.Validate]: a release
// field that no store, file name, query or report can take safely. The
// root package maps it to deploy.ErrInvalid.
var ErrInvalid = errors.New("state: invalid release")

// Limits of [Release.Validate].
const (
	// MaxNameLen bounds Service, Environment, Version, PreviousVersion,
	// Commit, and the keys of Links and Labels.
	MaxNameLen = 128
	// MaxDescriptionLen bounds Description, in bytes.
	MaxDescriptionLen = 4096
	// MaxValueLen bounds a label value and a link, in bytes.
	MaxValueLen = 2048
	// MaxEntries bounds the number of Links and of Labels.
	MaxEntries = 64
)

// FieldError is a release field that [Release.Validate] refuses. It wraps
// [ErrInvalid].
type FieldError struct {
	// Field names the field: "Service", "Labels[\"team\"]".
	Field string
	// Value is the value refused.
	Value string
	// Problem says what is wrong with it.
	Problem string
}

// Error returns "state: invalid release: Release.FIELD "VALUE" PROBLEM",
// the value quoted so that control characters show.
func (e *FieldError) Error() string {
	v := e.Value
	if len(v) > 80 {
		// A long value is shown by its start; its length is the problem.
		cut := 80
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "…"
	}
	return fmt.Sprintf("%v: Release.%s %q %s", ErrInvalid, e.Field, v, e.Problem)
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate reports the first field of r that is unsafe to store, to use in
// a file name, a query or a URL, or to show, as a [*FieldError] wrapping
// [ErrInvalid]. It is the same rule for every store, checked before anything
// else happens to the release:
//
//   - Service and Environment: 1 to MaxNameLen letters, digits, '.', '_'
//     and '-', starting with a letter or digit (so never "." or ".."). Service
//     is required; an empty Environment is left for the caller's default.
//   - Version and PreviousVersion: the same, plus '+' (semantic-version
//     build metadata). Version is required.
//   - Commit: a hash or a ref: the characters of a version plus '/', no
//     "..", no leading or trailing '/'.
//   - Description: valid UTF-8 of at most MaxDescriptionLen bytes with no
//     control characters but newline and tab.
//   - Links: at most MaxEntries; keys are names of letters, digits, space,
//     '.', '_' and '-'; values are http or https URLs without user
//     information, or relative references ("docs/design.md"), with no white
//     space or control characters.
//   - Labels: at most MaxEntries; keys are names of letters, digits, '.',
//     '_', '-' and '/'; values are valid UTF-8 of at most MaxValueLen bytes
//     with no control characters.
func (r Release) Validate() error {
	if r.Service == "" {
		return &FieldError{"Service", r.Service, "is empty"}
	}
	if err := name("Service", r.Service, ""); err != nil {
		return err
	}
	if r.Environment != "" {
		if err := name("Environment", r.Environment, ""); err != nil {
			return err
		}
	}
	if r.Version == "" {
		return &FieldError{"Version", r.Version, "is empty"}
	}
	if err := name("Version", r.Version, "+"); err != nil {
		return err
	}
	if r.PreviousVersion != "" {
		if err := name("PreviousVersion", r.PreviousVersion, "+"); err != nil {
			return err
		}
	}
	if r.Commit != "" {
		if err := name("Commit", r.Commit, "+/"); err != nil {
			return err
		}
		if strings.Contains(r.Commit, "..") || strings.HasSuffix(r.Commit, "/") || strings.Contains(r.Commit, "//") {
			return &FieldError{"Commit", r.Commit, `has "..", "//" or a trailing "/"`}
		}
	}
	if err := text("Description", r.Description, MaxDescriptionLen, "\n\t"); err != nil {
		return err
	}
	if len(r.Links) > MaxEntries {
		return &FieldError{"Links", fmt.Sprint(len(r.Links)), fmt.Sprintf("entries are more than %d", MaxEntries)}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Links)) {
		field := fmt.Sprintf("Links[%q]", k)
		if err := key(field, k, " "); err != nil {
			return err
		}
		if err := link(field, r.Links[k]); err != nil {
			return err
		}
	}
	if len(r.Labels) > MaxEntries {
		return &FieldError{"Labels", fmt.Sprint(len(r.Labels)), fmt.Sprintf("entries are more than %d", MaxEntries)}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		field := fmt.Sprintf("Labels[%q]", k)
		if err := key(field, k, "/"); err != nil {
			return err
		}
		if err := text(field, r.Labels[k], MaxValueLen, ""); err != nil {
			return err
		}
	}
	return nil
}

// name checks an identifier: letters, digits, '.', '_', '-' and extra,
// starting with a letter or digit.
func name(field, v, extra string) error {
	if len(v) > MaxNameLen {
		return &FieldError{field, v, fmt.Sprintf("is %d bytes long, more than %d", len(v), MaxNameLen)}
	}
	for i, c := range []byte(v) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i == 0:
			return &FieldError{field, v, "does not start with a letter or digit"}
		case c == '.', c == '_', c == '-', strings.IndexByte(extra, c) >= 0:
		default:
			return &FieldError{field, v, fmt.Sprintf("has %q: want letters, digits, '.', '_', '-'%s", rune(c), describe(extra))}
		}
	}
	return nil
}

func describe(extra string) string {
	var b strings.Builder
	for _, c := range extra {
		fmt.Fprintf(&b, ", '%c'", c)
	}
	return b.String()
}

func key(field, k, extra string) error {
	if k == "" {
		return &FieldError{field, k, "has an empty key"}
	}
	if err := name(field, k, extra); err != nil {
		return &FieldError{field, k, "key " + err.(*FieldError).Problem}
	}
	return nil
}

// text checks free text: valid UTF-8, at most max bytes, no control
// characters but those in allowed.
func text(field, v string, limit int, allowed string) error {
	if len(v) > limit {
		return &FieldError{field, v, fmt.Sprintf("is %d bytes long, more than %d", len(v), limit)}
	}
	if !utf8.ValidString(v) {
		return &FieldError{field, v, "is not valid UTF-8"}
	}
	for _, r := range v {
		if (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)) && !strings.ContainsRune(allowed, r) {
			return &FieldError{field, v, fmt.Sprintf("has the control character %U", r)}
		}
	}
	return nil
}

func link(field, v string) error {
	if err := text(field, v, MaxValueLen, ""); err != nil {
		return err
	}
	if strings.ContainsFunc(v, unicode.IsSpace) {
		return &FieldError{field, v, "has white space"}
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return &FieldError{field, v, "is not a URL"}
	case u.Scheme == "" && u.Host == "" && u.User == nil:
		return nil // a relative reference: a path in the repository
	case u.Scheme != "http" && u.Scheme != "https":
		return &FieldError{field, v, "is not an http or https URL"}
	case u.Host == "":
		return &FieldError{field, v, "has no host"}
	case u.User != nil:
		return &FieldError{field, v, "has user information (a credential)"}
	}
	return nil
}
