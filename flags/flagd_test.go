package flags_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy/flags"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", path, err, data)
	}
	return v
}

// onlyFile fails unless dir holds exactly the flag file: no temporary file is left.
func onlyFile(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"flags.json"}, names); diff != "" {
		t.Errorf("files in dir (-want +got):\n%s", diff)
	}
}

func TestFlagdFileDefineAndSetShare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	f := flags.NewFlagdFile(path)
	ctx := t.Context()

	if err := f.Define(ctx, flags.BoolFlag(flagKey, 0.05)); err != nil {
		t.Fatalf("Define: %v", err)
	}
	if err := f.SetShare(ctx, flagKey, 0.25); err != nil {
		t.Fatalf("SetShare: %v", err)
	}
	want := map[string]any{
		"$schema": "https://flagd.dev/schema/v0/flags.json",
		"flags": map[string]any{
			flagKey: map[string]any{
				"state":          "ENABLED",
				"variants":       map[string]any{"on": true, "off": false},
				"defaultVariant": "off",
				"targeting": map[string]any{
					"fractional": []any{[]any{"on", 2500.0}, []any{"off", 7500.0}},
				},
			},
		},
	}
	if diff := cmp.Diff(want, readJSON(t, path)); diff != "" {
		t.Errorf("flag file (-want +got):\n%s", diff)
	}
	if got, err := f.Share(ctx, flagKey); err != nil || got != 0.25 {
		t.Errorf("Share = %v, %v; want 0.25", got, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	onlyFile(t, dir)
}

func TestFlagdFilePreservesOtherFlagsAndUnknownFields(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	const existing = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "$evaluators": {"internal": {"in": ["@example.com", {"var": "email"}]}},
  "metadata": {"owner": "payments"},
  "flags": {
    "header-color": {
      "state": "ENABLED",
      "variants": {"red": "#f00", "blue": "#00f"},
      "defaultVariant": "red",
      "targeting": {"if": [{"$ref": "internal"}, "blue", null]},
      "x-custom": [1, 2, {"deep": true}]
    },
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"fractional": [["on", 5], ["off", 95]]},
      "metadata": {"ticket": "PAY-42"}
    }
  }
}`
	if err := os.WriteFile(path, []byte(existing), 0o640); err != nil {
		t.Fatal(err)
	}
	f := flags.NewFlagdFile(path)
	ctx := t.Context()
	if got, err := f.Share(ctx, flagKey); err != nil || got != 0.05 {
		t.Fatalf("Share of a hand-written 5/95 rule = %v, %v; want 0.05", got, err)
	}
	if err := f.SetShare(ctx, flagKey, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := f.Define(ctx, flags.Flag{Key: "limit", Off: flags.Variant{Name: "low", Value: 10}, On: flags.Variant{Name: "high", Value: 100}, Share: 0.1}); err != nil {
		t.Fatal(err)
	}

	var want map[string]any
	if err := json.Unmarshal([]byte(existing), &want); err != nil {
		t.Fatal(err)
	}
	fl := want["flags"].(map[string]any)
	fl[flagKey].(map[string]any)["targeting"] = map[string]any{"fractional": []any{[]any{"on", 5000.0}, []any{"off", 5000.0}}}
	fl["limit"] = map[string]any{
		"state":          "ENABLED",
		"variants":       map[string]any{"low": 10.0, "high": 100.0},
		"defaultVariant": "low",
		"targeting":      map[string]any{"fractional": []any{[]any{"high", 1000.0}, []any{"low", 9000.0}}},
	}
	if diff := cmp.Diff(want, readJSON(t, path)); diff != "" {
		t.Errorf("flag file (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, %v; want 0640 kept", fi.Mode(), err)
	}
	onlyFile(t, dir)
}

func TestFlagdFileErrorsLeaveFileUntouched(t *testing.T) {
	ctx := t.Context()
	const valid = `{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": {"fractional": [["on", 100], ["off", 9900]]}},
	  "static": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
	  "broken": 42}}`
	for _, tc := range []struct {
		name     string
		content  string // "" means no file
		op       func(*flags.FlagdFile) error
		want     error
		contains string
	}{
		{"NaN share", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, math.NaN()) }, flags.ErrInvalid, "share NaN"},
		{"negative share", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, -0.5) }, flags.ErrInvalid, "share -0.5"},
		{"share above 1", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, 1.01) }, flags.ErrInvalid, "share 1.01"},
		{"empty key", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, "", 0.5) }, flags.ErrInvalid, "flag key is empty"},
		{"invalid flag", valid, func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("x", 2)) }, flags.ErrInvalid, "share 2"},
		{"unknown flag", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, "nope", 0.5) }, flags.ErrFlagNotFound, `"nope"`},
		{"no file", "", func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, 0.5) }, flags.ErrFlagNotFound, "does not exist"},
		{"not a rollout", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, "static", 0.5) }, flags.ErrNotRollout, "no targeting"},
		{"flag not an object", valid, func(f *flags.FlagdFile) error { return f.SetShare(ctx, "broken", 0.5) }, flags.ErrMalformed, "not a JSON object"},
		{"define over non-object flag", valid, func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("broken", 0.5)) }, flags.ErrMalformed, "broken"},
		{"truncated file", valid[:40], func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, 0.5) }, flags.ErrMalformed, ""},
		{"truncated file, define", valid[:40], func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("y", 0.5)) }, flags.ErrMalformed, ""},
		{"empty file", " \n", func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("y", 0.5)) }, flags.ErrMalformed, "not a JSON object"},
		{"array", "[]", func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("y", 0.5)) }, flags.ErrMalformed, "not a JSON object"},
		{"flags is a string", `{"flags": "x"}`, func(f *flags.FlagdFile) error { return f.Define(ctx, flags.BoolFlag("y", 0.5)) }, flags.ErrMalformed, `"flags"`},
		{"trailing garbage", valid + "}", func(f *flags.FlagdFile) error { return f.SetShare(ctx, flagKey, 0.5) }, flags.ErrMalformed, ""},
		{"cancelled", valid, func(f *flags.FlagdFile) error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return f.SetShare(c, flagKey, 0.5)
		}, context.Canceled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "flags.json")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := tc.op(flags.NewFlagdFile(path))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("got error %v, want %v containing %q", err, tc.want, tc.contains)
			}
			got, readErr := os.ReadFile(path)
			if tc.content == "" {
				if !errors.Is(readErr, os.ErrNotExist) {
					t.Errorf("file created on error: %v", readErr)
				}
				return
			}
			if !bytes.Equal(got, []byte(tc.content)) {
				t.Errorf("file changed on error:\n%s", got)
			}
			onlyFile(t, dir)
		})
	}
}

// TestFlagdFileMonotonicWeights checks the written weights put the on variant
// first, so that flagd's bucket ranges grow with the share.
func TestFlagdFileMonotonicWeights(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	f := flags.NewFlagdFile(path)
	ctx := t.Context()
	if err := f.Define(ctx, flags.BoolFlag(flagKey, 0)); err != nil {
		t.Fatal(err)
	}
	for _, share := range []float64{0.01, 0.05, 0.25, 0.5, 1} {
		if err := f.SetShare(ctx, flagKey, share); err != nil {
			t.Fatal(err)
		}
		frac := readJSON(t, path)["flags"].(map[string]any)[flagKey].(map[string]any)["targeting"].(map[string]any)["fractional"]
		want := []any{[]any{"on", share * flags.Buckets}, []any{"off", (1 - share) * flags.Buckets}}
		if diff := cmp.Diff(want, frac); diff != "" {
			t.Errorf("at %v: fractional (-want +got):\n%s", share, diff)
		}
	}
}

// FuzzFlagdFile feeds arbitrary existing files to the writer and the reader:
// they return errors, never panic, and never change the file when they fail.
func FuzzFlagdFile(f *testing.F) {
	f.Add([]byte(`{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": {"fractional": [["on", 100], ["off", 9900]]}}}}`), 0.5)
	f.Add([]byte(`{"flags": {"new-checkout": {"targeting": {"fractional": [["on", 1.5], ["off", -1]]}}}}`), 0.25)
	f.Add([]byte(`{"flags": {"new-checkout": {"targeting": {"fractional": [{"var": "email"}, ["on", 1], ["off", 1]]}}}}`), 0.25)
	f.Add([]byte(`{"flags": {"new-checkout": null}}`), 0.1)
	f.Add([]byte(`{"flags": null, "x": [1,2,3]}`), 0.1)
	f.Add([]byte(`{"flags": {"new-checkout": {"targeting": {"fractional": [["on"], ["off", 1]]}}}}`), 1.0)
	f.Add([]byte(`{"flags": {`), 0.3)
	f.Add([]byte(`{"flags": {}} trailing`), 0.3)
	f.Add([]byte("{\"flags\": {\"new-checkout\": {\"variants\": {\"\xff\": 1}}}}"), 0.3)
	f.Add([]byte(``), 0.0)
	f.Add([]byte(`[]`), 0.0)
	f.Add([]byte(`{"flags": {"new-checkout": {"targeting": {"fractional": [["on", 1e300], ["off", 1]]}}}}`), 0.7)
	f.Fuzz(func(t *testing.T, content []byte, share float64) {
		dir := t.TempDir()
		path := filepath.Join(dir, "flags.json")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		ff := flags.NewFlagdFile(path)
		ctx := context.Background()
		check := func(op string, err error) {
			t.Helper()
			got, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatalf("%s: reading back: %v", op, rerr)
			}
			if err != nil {
				if !bytes.Equal(got, content) {
					t.Fatalf("%s failed (%v) and changed the file:\n%q\nto\n%q", op, err, content, got)
				}
				return
			}
			if !json.Valid(got) {
				t.Fatalf("%s succeeded but wrote invalid JSON: %q", op, got)
			}
			content = got
		}
		_, err := ff.Share(ctx, flagKey)
		check("Share", err)
		err = ff.SetShare(ctx, flagKey, share)
		check("SetShare", err)
		if err == nil {
			if got, err := ff.Share(ctx, flagKey); err != nil || got != math.Round(share*flags.Buckets)/flags.Buckets {
				t.Fatalf("after SetShare(%v): Share = %v, %v", share, got, err)
			}
		}
		err = ff.Define(ctx, flags.BoolFlag("fuzz", 0.5))
		check("Define", err)
		if err == nil {
			if got, err := ff.Share(ctx, "fuzz"); err != nil || got != 0.5 {
				t.Fatalf("after Define: Share = %v, %v", got, err)
			}
		}
		onlyFile(t, dir)
	})
}
