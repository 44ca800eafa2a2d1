package state_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/deploykit/deploy/state"
)

// TestFileSurvivesKillDuringUpdates kills a process (this test binary
// started again) that appends and saves in a loop, at a different point in
// each round, and resumes with a new one. After every kill the record loads
// whole, with exactly the entries of its last committed Update, whatever the
// killed process had appended to the history file without committing. (A
// kill cannot tear a head appended with one write; the torn heads a power
// loss can leave are made by hand in file_torn_test.go.)
func TestFileSurvivesKillDuringUpdates(t *testing.T) {
	if dir := os.Getenv("DEPLOYKIT_CRASH_WORKER"); dir != "" {
		crashWorker(t, dir)
		return
	}
	f, dir := newFile(t)
	ctx := t.Context()
	r := longRecord("rel-1")
	r.Observed = 0
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	base := len(r.Timeline)
	torn := 0
	defer func() { t.Logf("%d of 12 kills left uncommitted history behind", torn) }()
	for round := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileSurvivesKillDuringUpdates$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DEPLOYKIT_CRASH_WORKER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it commit 1 to 12 Updates, then kill it, most likely in the
		// middle of the next one.
		lines := bufio.NewScanner(out)
		for range round + 1 {
			if !lines.Scan() {
				cmd.Wait()
				t.Fatalf("round %d: the worker stopped early", round)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()

		if uncommitted(t, dir) {
			torn++
		}
		got, err := f.Load(ctx, "rel-1")
		if err != nil {
			t.Fatalf("round %d: Load after the kill: %v", round, err)
		}
		if n := len(got.Timeline); n != base+got.Observed {
			t.Fatalf("round %d: %d timeline entries after %d committed Updates, want %d", round, n, got.Observed, base+got.Observed)
		}
		if got.Observed > 0 {
			if last := got.Timeline[len(got.Timeline)-1].Detail; last != strconv.Itoa(got.Observed) {
				t.Fatalf("round %d: last entry %q, want %d", round, last, got.Observed)
			}
		}
	}
}

// uncommitted reports whether the history file of rel-1 is longer than its
// head counts.
func uncommitted(t *testing.T, dir string) bool {
	b, err := state.CurrentHead(filepath.Join(dir, "rel-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ History struct{ Size int64 } }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return size(nil, filepath.Join(dir, "rel-1.jsonl")) > h.History.Size
}

// crashWorker appends an entry and saves, forever, printing the number of
// each committed Update.
func crashWorker(t *testing.T, dir string) {
	f, err := state.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := f.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	for {
		r.Observed++
		r.Timeline = append(r.Timeline, state.Entry{Phase: "deploy", Kind: "note", Detail: strconv.Itoa(r.Observed)})
		if err := f.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
		fmt.Println(r.Observed)
	}
}
