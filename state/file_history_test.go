package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// sameRecord compares records as stores keep them: times as instants,
// event payloads as compact JSON.
var sameRecord = cmp.Options{
	cmpopts.EquateApproxTime(0),
	cmp.Transformer("compact", func(m json.RawMessage) string {
		var b bytes.Buffer
		json.Compact(&b, m)
		return b.String()
	}),
}

func note(i int) state.Entry {
	r := deploytest.FullRecord("x")
	return state.Entry{At: r.Created.Add(time.Duration(i) * time.Minute), Phase: "deploy", Kind: "step", Name: fmt.Sprintf("step-%03d", i), Stage: "production", Exposure: 0.5, Detail: "applied"}
}

// longRecord is deploytest.FullRecord with more timeline entries than a
// head holds as pending, so that Create writes the history file.
func longRecord(id string) *state.Record {
	r := deploytest.FullRecord(id)
	for i := range 17 {
		r.Timeline = append(r.Timeline, note(100+i))
	}
	return r
}

func size(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		if t == nil {
			return 0
		}
		t.Fatal(err)
	}
	return st.Size()
}

// TestFileAppendsHistory: an Update keeps up to 16 new entries in the head
// and moves them to the history file, as JSON lines, once there would be
// more: the head file stays bounded (at most state.MaxHeads heads of at
// most 16 pending entries each), and a step's entries cost the same, under
// 200 bytes each, at any length of the history.
func TestFileAppendsHistory(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := longRecord("rel-1")
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	head, hist := filepath.Join(dir, "rel-1.json"), filepath.Join(dir, "rel-1.jsonl")
	headSize := size(t, head)
	var grew []int64
	writes := 0
	for i := range 50 {
		before := size(nil, hist)
		r.Timeline = append(r.Timeline, note(i))
		if err := f.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
		if g := size(nil, hist) - before; g > 0 {
			writes++
			grew = append(grew, g)
		}
		if n := size(t, head); n > state.MaxHeads*(headSize+17*200) {
			t.Fatalf("after %d appended entries the head file went from %d to %d bytes", i+1, headSize, n)
		}
	}
	if writes < 2 || writes > 50/16+1 {
		t.Errorf("the history file was written %d times for 50 entries, want once per 17", writes)
	}
	got, err := f.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, sameRecord); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	for i := range grew {
		grew[i] /= 17 // bytes per entry in each write of 17
	}
	for i, g := range grew {
		if g != grew[0] || g > 200 {
			t.Fatalf("write %d grew the history by %d bytes an entry, the first by %d; want the same, at most 200", i, g, grew[0])
		}
	}
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]any // the lines' short keys: n is the name
	if line, _, _ := bytes.Cut(b, []byte("\n")); json.Unmarshal(line, &first) != nil || first["n"] == nil {
		t.Errorf("first history line %s: want an entry under short keys", line)
	}
}

// TestFileIgnoresTornHistory: bytes after the committed history, such as
// a line torn by a crash in the middle of an Update, are ignored by Load
// and written over by the next Update.
func TestFileIgnoresTornHistory(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := longRecord("rel-1")
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(dir, "rel-1.jsonl")
	for _, torn := range []string{`{"at":"2025-03-04T05:06:07Z","pha`, "{\"at\":\"2025-03-04T05:06:07Z\",\"phase\":\"x\",\"kind\":\"uncommitted\"}\n{\"at"} {
		h, err := os.OpenFile(hist, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.WriteString(torn)
		h.Close()
		got, err := f.Load(ctx, "rel-1")
		if err != nil {
			t.Fatalf("Load with %q after the committed history: %v", torn, err)
		}
		if len(got.Timeline) != len(r.Timeline) {
			t.Fatalf("Load with %q after the committed history: %d timeline entries, want %d", torn, len(got.Timeline), len(r.Timeline))
		}
		for range 17 { // more than the head keeps: the history file is written
			r.Timeline = append(r.Timeline, note(len(r.Timeline)))
		}
		if err := f.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err = f.Load(ctx, "rel-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got, sameRecord); diff != "" {
			t.Errorf("Load after an Update over %q (-want +got):\n%s", torn, diff)
		}
		b, _ := os.ReadFile(hist)
		if bytes.Contains(b, []byte("uncommitted")) || bytes.Contains(b, []byte(`"pha{`)) {
			t.Errorf("the history still holds the torn bytes:\n%s", b)
		}
	}
}

// TestFileCorruptHistory: a history file shorter than its head counts, or
// with a line that does not decode within the committed part, gives
// ErrCorrupt naming the file.
func TestFileCorruptHistory(t *testing.T) {
	for name, damage := range map[string]func(path string){
		"missing":   func(p string) { os.Remove(p) },
		"truncated": func(p string) { os.Truncate(p, size(nil, p)-3) },
		"garbled": func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"phase"`), []byte(`"phase`), 1), 0o600)
		},
	} {
		t.Run(name, func(t *testing.T) {
			f, dir := newFile(t)
			r := longRecord("rel-1")
			if err := f.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "rel-1.jsonl")
			damage(p)
			if _, err := f.Load(t.Context(), "rel-1"); !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), p) {
				t.Errorf("Load = %v, want ErrCorrupt naming %s", err, p)
			}
		})
	}
}

// TestFileLoadsEarlierFormat: a record written by an earlier version, one
// JSON file with its history inside, loads as it is; its first Update
// moves the history to the history file, and the record stays the same.
func TestFileLoadsEarlierFormat(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	r.Rev = 3
	r.Timeline = append(r.Timeline, note(1), note(2))
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rel-1.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, sameRecord); diff != "" {
		t.Fatalf("Load of the earlier format (-want +got):\n%s", diff)
	}
	short := got.Clone()
	short.Timeline = short.Timeline[:1]
	if err := f.Update(ctx, short); !errors.Is(err, state.ErrHistory) {
		t.Errorf("Update dropping entries of the earlier format = %v, want ErrHistory", err)
	}
	got.Timeline = append(got.Timeline, note(3))
	if err := f.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := f.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again, sameRecord); diff != "" {
		t.Errorf("Load after the first Update (-want +got):\n%s", diff)
	}
	head, _ := os.ReadFile(filepath.Join(dir, "rel-1.json"))
	if bytes.Contains(head, []byte(`"timeline":[`)) || bytes.Contains(head, []byte(`"rollbackSteps"`)) {
		t.Errorf("the head still holds the history:\n%s", head)
	}
	hist, _ := os.ReadFile(filepath.Join(dir, "rel-1.jsonl"))
	lines := bytes.Count(hist, []byte("\n")) + bytes.Count(head, []byte(`{"t":`))
	if lines != 5 {
		t.Errorf("history file and pending entries hold %d entries, want 5 (4 timeline entries and a rollback step)", lines)
	}
}

// TestFileUpdatesReleasesConcurrently: holders of eight releases append
// and save at once (each Update holds its release's lock only, and renames
// share directory syncs); every entry of every release is stored.
func TestFileUpdatesReleasesConcurrently(t *testing.T) {
	f, _ := newFile(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	recs := make([]*state.Record, 8)
	for i := range recs {
		r := deploytest.FullRecord(fmt.Sprint("rel-", i))
		r.Release.Service = fmt.Sprint("svc-", i)
		if err := f.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		recs[i] = r
		wg.Go(func() {
			for j := range 20 {
				r.Timeline = append(r.Timeline, note(j))
				if err := f.Update(ctx, r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, r := range recs {
		got, err := f.Load(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got, sameRecord); diff != "" {
			t.Errorf("Load(%s) (-want +got):\n%s", r.ID, diff)
		}
	}
}
