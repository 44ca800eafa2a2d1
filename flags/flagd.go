package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// FlagdFile is a [Controller] for services that evaluate flags with flagd: it
// keeps rollout flags in a flagd flag-definition file, which flagd (or an
// OpenFeature flagd provider in file mode) watches.
//
// A rollout flag is written as
//
//	"checkout": {
//	  "state": "ENABLED",
//	  "variants": {"on": true, "off": false},
//	  "defaultVariant": "off",
//	  "targeting": {"fractional": [["on", 2500], ["off", 7500]]}
//	}
//
// with the on variant first and weights that add up to [Buckets], so flagd puts a
// targeting key in the same bucket as [Bucket] and serves it the same variant as
// [Provider] at the same share, and raising the share keeps every exposed key
// exposed. A context without a targeting key gets the default variant, off.
//
// Every change reads the file, changes one flag, and replaces the file
// atomically: a temporary file in the same directory is written, synced and
// closed, then renamed over the old one. The other flags and any fields this
// package does not know are kept, though the file is re-indented and object keys
// are sorted. Nothing holds the file open between calls: flagd's file watcher
// misses a rename while the old file is still open or hard-linked anywhere.
// Renaming replaces a symbolic link at Path with a regular file.
//
// A FlagdFile serialises its own changes; it does not lock the file against other
// processes, so give each file one writer. Its methods are safe for concurrent use.
type FlagdFile struct {
	path string
	mu   sync.Mutex
}

// NewFlagdFile returns a FlagdFile for the flag file at path. The file need not
// exist yet: Define creates it.
func NewFlagdFile(path string) *FlagdFile {
	return &FlagdFile{path: path}
}

// Path returns the path of the flag file.
func (f *FlagdFile) Path() string { return f.path }

// Define writes flag as a rollout flag (see [FlagdFile]), creating the file if it
// does not exist and replacing the flag's state, variants, default variant and
// targeting if it does; the flag's other fields, such as metadata, are kept. It
// returns an error wrapping [ErrInvalid] for an invalid flag and one wrapping
// [ErrMalformed] when the existing file is not a flagd flag file; in both cases the
// file is not touched.
func (f *FlagdFile) Define(ctx context.Context, flag Flag) error {
	flag, err := flag.normalize()
	if err != nil {
		return err
	}
	variants, err := json.Marshal(map[string]any{flag.On.Name: flag.On.Value, flag.Off.Name: flag.Off.Value})
	if err != nil {
		return fmt.Errorf("%w: flag %q: variant values do not encode to JSON: %v", ErrInvalid, flag.Key, err)
	}
	return f.update(ctx, func(doc *flagdDoc, exists bool) error {
		def, err := doc.flag(flag.Key)
		if err != nil && !errors.Is(err, ErrFlagNotFound) {
			return err
		}
		if def == nil {
			def = map[string]json.RawMessage{}
		}
		def["state"] = json.RawMessage(`"ENABLED"`)
		def["variants"] = variants
		def["defaultVariant"] = mustJSON(flag.Off.Name)
		def["targeting"] = fractionalRule(flag.On.Name, flag.Off.Name, weight(flag.Share))
		return doc.setFlag(flag.Key, def)
	})
}

// SetShare sets the share of targeting keys that get flagKey's on variant,
// rounded to the nearest bucket, by rewriting the weights of the flag's
// fractional rule. The key and share are checked before the file is read. It
// returns an error wrapping [ErrFlagNotFound] if the file or the flag does not
// exist, [ErrNotRollout] if the flag's targeting is not the rule Define writes,
// and [ErrMalformed] if the file is not a flagd flag file; the file is not
// touched on any error.
func (f *FlagdFile) SetShare(ctx context.Context, flagKey string, share float64) error {
	if err := validateKey(flagKey); err != nil {
		return err
	}
	if err := validateShare(flagKey, share); err != nil {
		return err
	}
	return f.update(ctx, func(doc *flagdDoc, exists bool) error {
		if !exists {
			return fmt.Errorf("%w: %q: %s does not exist", ErrFlagNotFound, flagKey, f.path)
		}
		def, err := doc.flag(flagKey)
		if err != nil {
			return err
		}
		r, err := parseRollout(flagKey, def)
		if err != nil {
			return err
		}
		def["targeting"] = fractionalRule(r.on, r.off, weight(share))
		return doc.setFlag(flagKey, def)
	})
}

// Share returns the share of targeting keys that get flagKey's on variant, as
// the on variant's weight over the total weight of the flag's fractional rule.
// The errors are those of SetShare.
func (f *FlagdFile) Share(ctx context.Context, flagKey string) (float64, error) {
	if err := validateKey(flagKey); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	doc, exists, err := f.read()
	if err != nil {
		return 0, err
	}
	if !exists {
		return 0, fmt.Errorf("%w: %q: %s does not exist", ErrFlagNotFound, flagKey, f.path)
	}
	def, err := doc.flag(flagKey)
	if err != nil {
		return 0, err
	}
	r, err := parseRollout(flagKey, def)
	if err != nil {
		return 0, err
	}
	if r.total == 0 {
		return 0, nil
	}
	return r.onWeight / r.total, nil
}

// update reads the document, applies change, and replaces the file with the
// result. Nothing is written when change returns an error.
func (f *FlagdFile) update(ctx context.Context, change func(doc *flagdDoc, exists bool) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, exists, err := f.read()
	if err != nil {
		return err
	}
	if err := change(doc, exists); err != nil {
		return err
	}
	out, err := doc.encode()
	if err != nil {
		return err
	}
	return writeAtomic(f.path, out, doc.perm)
}

// read loads and parses the file. A missing file is an empty document.
func (f *FlagdFile) read() (*flagdDoc, bool, error) {
	doc := &flagdDoc{perm: 0o644, top: map[string]json.RawMessage{}, flags: map[string]json.RawMessage{}}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("flags: read flagd file: %w", err)
	}
	if fi, err := os.Stat(f.path); err == nil {
		doc.perm = fi.Mode().Perm()
	}
	if err := doc.decode(data); err != nil {
		return nil, true, fmt.Errorf("%w: %s: %v", ErrMalformed, f.path, err)
	}
	return doc, true, nil
}

// flagdDoc is a flagd flag-definition document, kept as raw JSON except for the
// parts being changed, so unknown fields survive.
type flagdDoc struct {
	top   map[string]json.RawMessage
	flags map[string]json.RawMessage
	perm  fs.FileMode
}

func (d *flagdDoc) decode(data []byte) error {
	if !isObject(data) {
		return errors.New("the document is not a JSON object")
	}
	if err := json.Unmarshal(data, &d.top); err != nil {
		return err
	}
	raw, ok := d.top["flags"]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	if !isObject(raw) {
		return errors.New(`"flags" is not a JSON object`)
	}
	return json.Unmarshal(raw, &d.flags)
}

func (d *flagdDoc) encode() ([]byte, error) {
	flags, err := json.Marshal(d.flags)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.top["flags"] = flags
	if _, ok := d.top["$schema"]; !ok {
		d.top["$schema"] = json.RawMessage(`"https://flagd.dev/schema/v0/flags.json"`)
	}
	out, err := json.MarshalIndent(d.top, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return append(out, '\n'), nil
}

// flag returns the definition of key as raw fields. It wraps ErrFlagNotFound if
// there is none and ErrMalformed if it is not an object.
func (d *flagdDoc) flag(key string) (map[string]json.RawMessage, error) {
	raw, ok := d.flags[key]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrFlagNotFound, key)
	}
	if !isObject(raw) {
		return nil, fmt.Errorf("%w: flag %q is not a JSON object", ErrMalformed, key)
	}
	var def map[string]json.RawMessage
	if err := json.Unmarshal(raw, &def); err != nil {
		return nil, fmt.Errorf("%w: flag %q: %v", ErrMalformed, key, err)
	}
	return def, nil
}

func (d *flagdDoc) setFlag(key string, def map[string]json.RawMessage) error {
	raw, err := json.Marshal(def)
	if err != nil {
		return fmt.Errorf("%w: flag %q: %v", ErrMalformed, key, err)
	}
	d.flags[key] = raw
	return nil
}

// fractionalRule is flagd's targeting {"fractional": [[on, w], [off, Buckets-w]]}.
func fractionalRule(on, off string, w uint32) json.RawMessage {
	return mustJSON(map[string]any{
		"fractional": []any{[]any{on, w}, []any{off, Buckets - w}},
	})
}

// rolloutRule is a parsed two-variant fractional rule.
type rolloutRule struct {
	on, off         string
	onWeight, total float64
}

// parseRollout reads the on and off variant names and weights from a flag's
// {"fractional": [[on, w1], [off, w2]]} targeting.
func parseRollout(key string, def map[string]json.RawMessage) (rolloutRule, error) {
	notRollout := func(why string) (rolloutRule, error) {
		return rolloutRule{}, fmt.Errorf("%w: flag %q: %s", ErrNotRollout, key, why)
	}
	raw, ok := def["targeting"]
	if !ok {
		return notRollout("it has no targeting")
	}
	var targeting map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &targeting) != nil {
		return notRollout("its targeting is not a JSON object")
	}
	frac, ok := targeting["fractional"]
	if !ok || len(targeting) != 1 {
		return notRollout(`its targeting is not a single "fractional" rule`)
	}
	var dist [][]json.RawMessage
	if err := json.Unmarshal(frac, &dist); err != nil || len(dist) != 2 {
		return notRollout("its fractional rule is not two [variant, weight] pairs with the targeting key as bucketing value")
	}
	var r rolloutRule
	names := [2]*string{&r.on, &r.off}
	weights := [2]*float64{&r.onWeight, nil}
	var offWeight float64
	weights[1] = &offWeight
	for i, pair := range dist {
		if len(pair) != 2 {
			return notRollout("its fractional rule is not two [variant, weight] pairs")
		}
		if json.Unmarshal(pair[0], names[i]) != nil || *names[i] == "" {
			return notRollout("a fractional variant is not a string")
		}
		w := weights[i]
		if json.Unmarshal(pair[1], w) != nil || *w < 0 || *w != math.Trunc(*w) || *w > math.MaxInt32 {
			return notRollout("a fractional weight is not a whole number in [0, 2147483647]")
		}
	}
	if r.on == r.off {
		return notRollout("both fractional entries name the same variant")
	}
	r.total = r.onWeight + offWeight
	return r, nil
}

// writeAtomic replaces path with data: it writes a temporary file in the same
// directory, syncs and closes it, and renames it over path, then syncs the
// directory. No file is left behind on error, and the old file is never held
// open or linked, so file watchers see the rename.
func writeAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("flags: write flagd file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("flags: write flagd file: %w", err)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename durable. Best effort: some file systems cannot sync a
	// directory, and the new file is already in place.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// isObject reports whether data, ignoring leading white space, starts a JSON
// object.
func isObject(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with strings, numbers and slices of them
	}
	return b
}
