package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// stat returns what os.SameFile compares of the file at path.
func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// lines counts the lines of the file at path.
func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// appendBytes appends b to the file at path, as a write cut short by a
// crash leaves it.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	h, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Write(b); err != nil {
		t.Fatal(err)
	}
}

// update appends an entry to r and saves it.
func update(t *testing.T, f *state.File, r *state.Record) {
	t.Helper()
	r.Observed++
	r.Timeline = append(r.Timeline, note(r.Observed))
	if err := f.Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

// loadEqual loads id and compares it with want.
func loadEqual(t *testing.T, f *state.File, want *state.Record, when string) {
	t.Helper()
	got, err := f.Load(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Load %s: %v", when, err)
	}
	if diff := cmp.Diff(want, got, sameRecord); diff != "" {
		t.Fatalf("Load %s (-want +got):\n%s", when, diff)
	}
}

// TestFileUpdateAppendsHeadWithoutRename: an Update of a running release
// appends its head to the release's head file, which keeps its inode (no
// temporary file, no rename); the file is compacted to one head, in place,
// before it holds more than state.MaxHeads times the newest head's length,
// and when the release ends (in place when the heads before the current one
// are longer than the new one).
func TestFileUpdateAppendsHeadWithoutRename(t *testing.T) {
	f, dir := newFile(t)
	r := deploytest.FullRecord("rel-1")
	r.Status, r.Outcome = state.Running, ""
	if err := f.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	head := filepath.Join(dir, "rel-1.json")
	first := stat(t, head)
	most := 0
	for i := 1; ; i++ {
		update(t, f, r)
		b, err := os.ReadFile(head)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, []byte("\n"))
		if n == 1 {
			break // compacted
		}
		if n != i+1 {
			t.Fatalf("after %d Updates the head file holds %d heads, want %d", i, n, i+1)
		}
		last := len(b) - bytes.LastIndexByte(b[:len(b)-1], '\n') - 1
		if len(b) > state.MaxHeads*last {
			t.Fatalf("after %d Updates the head file is %d bytes, more than %d heads of %d", i, len(b), state.MaxHeads, last)
		}
		most = n
		loadEqual(t, f, r, fmt.Sprintf("from a log of %d heads", n))
	}
	if most < state.MaxHeads/2 {
		t.Errorf("compacted at %d heads, want about %d", most, state.MaxHeads)
	}
	loadEqual(t, f, r, "after a compaction")
	// Two more heads: the final one fits over the two before the current
	// one, so it is written in place.
	update(t, f, r)
	update(t, f, r)
	r.Status = state.Succeeded
	update(t, f, r)
	if n := lines(t, head); n != 1 {
		t.Errorf("a finished release's head file holds %d heads, want 1", n)
	}
	if !os.SameFile(first, stat(t, head)) {
		t.Error("the head file was replaced, want it written in place")
	}
	loadEqual(t, f, r, "of the finished release")
	if got := names(t, dir); len(got) != 1 || got[0] != "rel-1.json" {
		t.Errorf("directory holds %q, want only rel-1.json", got)
	}
}

// TestFileLoadsHeadsLongerThanARead: heads longer than the first read of
// the end of a head file (8 KiB) load whole, appended and compacted.
func TestFileLoadsHeadsLongerThanARead(t *testing.T) {
	f, dir := newFile(t)
	r := deploytest.FullRecord("rel-1")
	r.Status, r.Outcome = state.Running, ""
	r.Release.Description = strings.Repeat("long description ", 3000) // 51 kB
	if err := f.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * state.MaxHeads {
		update(t, f, r)
		loadEqual(t, f, r, fmt.Sprintf("after %d Updates", i+1))
	}
	r.Status = state.Succeeded
	update(t, f, r)
	loadEqual(t, f, r, "of the finished release")
	if n := lines(t, filepath.Join(dir, "rel-1.json")); n != 1 {
		t.Errorf("a finished release's head file holds %d heads, want 1", n)
	}
}

// TestFileIgnoresTornHead: bytes after the last whole head that matches
// its checksum, as a crash in the middle of an append leaves them, are
// ignored by Load, List and Update, and the next Update cuts them off.
func TestFileIgnoresTornHead(t *testing.T) {
	for name, torn := range map[string]func(last []byte) []byte{
		// The first half of the next head, not yet whole.
		"cut short": func(last []byte) []byte { return last[:len(last)/2] },
		// A whole line whose content was not all written.
		"garbled": func(last []byte) []byte {
			b := bytes.Clone(last)
			b[len(b)/2] ^= 0x20
			return b
		},
		// Blocks of zeros: the size was written, the data was not.
		"zeros": func(last []byte) []byte { return make([]byte, 4096) },
		// The checksum's own digits damaged.
		"bad checksum": func(last []byte) []byte {
			b := bytes.Clone(last)
			copy(b[len(`{"crc":"`):], "zzzz")
			return b
		},
	} {
		// Short heads are read with the whole file, long ones from its end.
		for _, length := range []int{0, 10 << 10} {
			t.Run(fmt.Sprintf("%s/description=%d", name, length), func(t *testing.T) {
				tornHead(t, length, torn)
			})
		}
	}
}

// tornHead saves a record with a description of length bytes, twice, then
// appends torn(the last line) to its head file, and checks that Load, List
// and Update see the head before it, and that the next Update cuts it off.
func tornHead(t *testing.T, length int, torn func(last []byte) []byte) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	r.Release.Description = strings.Repeat("x", length)
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	update(t, f, r)
	head := filepath.Join(dir, "rel-1.json")
	b, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	lastLine := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
	appendBytes(t, head, torn(lastLine))

	loadEqual(t, f, r, "with a torn head after the current one")
	page, err := f.List(ctx, state.Query{})
	if err != nil || len(page.Releases) != 1 || page.Releases[0].Problem != "" || page.Releases[0].Status != r.Status {
		t.Fatalf("List with a torn head = %+v, %v; want rel-1 as it was", page, err)
	}
	stale := r.Clone()
	stale.Rev--
	if err := f.Update(ctx, stale); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Update at the revision before the current one = %v, want ErrConflict", err)
	}
	update(t, f, r) // at the current revision: accepted
	after, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(after, []byte("\n")); n != 3 || !bytes.Equal(after[:len(b)], b) || after[len(after)-1] != '\n' {
		t.Errorf("after the next Update the head file holds %d lines (want 3: the torn one cut off):\n%s", n, after)
	}
	loadEqual(t, f, r, "after the next Update")
}

// TestFileSurvivesCrashDuringCompaction: a compaction writes the new head
// over the start of the file before it cuts the file after it. A crash
// before the cut, with the new head written whole or in part, leaves the
// previous head last, and it is what Load reads; the next Update
// compacts again.
func TestFileSurvivesCrashDuringCompaction(t *testing.T) {
	for name, part := range map[string]func(line []byte) []byte{
		"new head whole":   func(line []byte) []byte { return line },
		"new head in part": func(line []byte) []byte { return line[:len(line)/3] },
	} {
		t.Run(name, func(t *testing.T) {
			f, dir := newFile(t)
			ctx := t.Context()
			r := deploytest.FullRecord("rel-1")
			r.Status, r.Outcome = state.Running, ""
			if err := f.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			for range 4 {
				update(t, f, r)
			}
			head := filepath.Join(dir, "rel-1.json")
			before, err := os.ReadFile(head)
			if err != nil {
				t.Fatal(err)
			}
			// The line the next Update writes, taken from the file it
			// appends it to, then the file as it was.
			next := r.Clone()
			update(t, f, next)
			b, _ := os.ReadFile(head)
			line := b[len(before):]
			os.WriteFile(head, before, 0o600)

			h, err := os.OpenFile(head, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			h.WriteAt(part(line), 0)
			h.Close()

			loadEqual(t, f, r, "after a crash within a compaction")
			r.Status = state.Succeeded // compacts
			update(t, f, r)
			if n := lines(t, head); n != 1 {
				t.Errorf("after the next compaction the head file holds %d lines, want 1", n)
			}
			loadEqual(t, f, r, "after the next compaction")
		})
	}
}

// TestFileCompactionCrashLeavesPreviousHead: a crash within a compaction,
// after the new head is written at the start of the file and before the
// file is cut after it, leaves the previous head current, also when the
// new head is longer than the heads before it (then the compaction must
// not write over the previous head: it writes a new file instead, and
// does not reach the cut).
func TestFileCompactionCrashLeavesPreviousHead(t *testing.T) {
	for name, grow := range map[string]int{"new head shorter": 0, "new head longer": 30 << 10} {
		t.Run(name, func(t *testing.T) {
			f, _ := newFile(t)
			r := deploytest.FullRecord("rel-1")
			r.Status, r.Outcome = state.Running, ""
			if err := f.Create(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			update(t, f, r)
			r.Release.Description = strings.Repeat("y", grow)
			update(t, f, r)
			prev := r.Clone()

			undo := state.CrashBeforeCut()
			defer undo()
			r.Status = state.Succeeded // compacts
			crashed := func() (crashed bool) {
				defer func() { crashed = recover() != nil }()
				update(t, f, r)
				return false
			}()
			undo()
			if crashed {
				loadEqual(t, f, prev, "after a crash before the cut")
				r = prev
				r.Status = state.Succeeded
				update(t, f, r)
			}
			if grow == 0 && !crashed {
				t.Error("the compaction did not reach the cut: the test tests nothing")
			}
			if grow > 0 && crashed {
				t.Error("the compaction of a head longer than the heads before the current one wrote it in place")
			}
			loadEqual(t, f, r, "after the compaction")
		})
	}
}

// TestFileCorruptHeadLog: a head file in the log format none of whose
// lines is whole and matches its checksum gives ErrCorrupt naming it.
func TestFileCorruptHeadLog(t *testing.T) {
	f, dir := newFile(t)
	r := deploytest.FullRecord("rel-1")
	if err := f.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	head := filepath.Join(dir, "rel-1.json")
	b, _ := os.ReadFile(head)
	b[len(b)/2] ^= 0x20
	os.WriteFile(head, b, 0o600)
	if _, err := f.Load(t.Context(), "rel-1"); !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), head) {
		t.Errorf("Load = %v, want ErrCorrupt naming %s", err, head)
	}
	r.Rev = 1
	if err := f.Update(t.Context(), r); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Update = %v, want ErrCorrupt", err)
	}
}

// TestFileLoadsHeadAndHistoryFormat: a release written by the version
// before the log of heads (testdata/file-head-history: a head rewritten
// whole, as one JSON object, beside its history file) loads as it was
// saved, its next Update makes its head file a log, and it loads the same
// again.
func TestFileLoadsHeadAndHistoryFormat(t *testing.T) {
	f, dir := newFile(t)
	for _, name := range []string{"rel-1.json", "rel-1.jsonl"} {
		b, err := os.ReadFile(filepath.Join("testdata", "file-head-history", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "file-head-history", "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := new(state.Record)
	if err := json.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	loadEqual(t, f, want, "of the earlier format")
	update(t, f, want)
	head := filepath.Join(dir, "rel-1.json")
	if b, _ := os.ReadFile(head); !bytes.HasPrefix(b, []byte(`{"crc":"`)) {
		t.Errorf("after an Update the head file is not a log of heads:\n%s", b)
	}
	loadEqual(t, f, want, "after its first Update")
	update(t, f, want)
	if n := lines(t, head); n != 2 {
		t.Errorf("after a second Update the head file holds %d heads, want 2", n)
	}
	loadEqual(t, f, want, "after its second Update")
}
