package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

func newFile(t *testing.T) (*state.File, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "releases")
	f, err := state.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

// names lists the directory, dot files included, but for the store's lock
// file, directory of release locks and index of active releases.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != ".lock" && e.Name() != ".locks" && e.Name() != ".active.json" {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestFileModes(t *testing.T) {
	f, dir := newFile(t)
	if f.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", f.Dir(), dir)
	}
	r := deploytest.FullRecord("rel-1")
	if err := f.Create(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if err := f.Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "rel-1.json"): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", path, st.Mode(), want)
		}
	}
}

// TestFileAtomic reads the head directly, and loads the record through
// another store (Load takes no lock), while the record is updated with new
// history, its log of heads appended to and compacted: every read sees a
// whole head, every Load a whole record whose history matches its head and
// a revision no older than the Load before, and no temporary file is left
// behind.
func TestFileAtomic(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	// A large record makes a torn write likely if writes were not atomic.
	for i := range 300 {
		r.Timeline = append(r.Timeline, state.Entry{At: r.Created, Phase: "deploy", Kind: "note", Detail: strings.Repeat("x", i%97)})
	}
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "rel-1.json")
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads, loads int
	var lastRev int64
	other, _ := state.NewFile(dir)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := other.Load(ctx, "rel-1")
			if err != nil {
				t.Errorf("Load during updates: %v", err)
				return
			}
			if got.Rev < lastRev {
				t.Errorf("Load during updates went back from rev %d to %d", lastRev, got.Rev)
				return
			}
			lastRev = got.Rev
			if want := 301 + got.Observed; len(got.Timeline) != want && got.Rev > 1 {
				t.Errorf("Load during updates: rev %d, observed %d, %d timeline entries, want %d", got.Rev, got.Observed, len(got.Timeline), want)
				return
			}
			loads++
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := state.CurrentHead(path)
			if err != nil {
				t.Errorf("reading %s during updates: %v", path, err)
				return
			}
			var got state.Record
			if err := json.Unmarshal(b, &got); err != nil {
				t.Errorf("read a partial head (%d bytes): %v", len(b), err)
				return
			}
			reads++
		}
	})
	for i := range 60 {
		r.Observed = i + 1
		r.Timeline = append(r.Timeline, state.Entry{At: r.Created, Phase: "deploy", Kind: "note", Detail: fmt.Sprint(i)})
		if err := f.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if reads == 0 || loads == 0 {
		t.Errorf("the readers read %d heads and loaded %d records, want some of each", reads, loads)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"rel-1.json", "rel-1.jsonl"}) {
		t.Errorf("directory holds %q, want only rel-1.json and rel-1.jsonl (temporary files removed)", got)
	}
}

func TestFileFailedWriteKeepsOld(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	bad := r.Clone()
	bad.Exposure = math.NaN() // JSON cannot encode it
	err := f.Update(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "rel-1") {
		t.Fatalf("Update with a NaN exposure = %v, want an error naming the record", err)
	}
	if bad.Rev != 1 {
		t.Errorf("after a failed Update, r.Rev = %d, want 1", bad.Rev)
	}
	got, err := f.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 1 || got.Exposure != r.Exposure {
		t.Errorf("after a failed Update, stored rev %d exposure %v, want rev 1 exposure %v", got.Rev, got.Exposure, r.Exposure)
	}
	nan := deploytest.FullRecord("rel-2")
	nan.Release.Service = "other"
	nan.Exposure = math.Inf(1)
	nan.Rev = 5
	if err := f.Create(ctx, nan); err == nil {
		t.Error("Create with an infinite exposure succeeded")
	}
	if nan.Rev != 5 {
		t.Errorf("after a failed Create, r.Rev = %d, want it unchanged (5)", nan.Rev)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"rel-1.json"}) {
		t.Errorf("directory holds %q, want only rel-1.json (its history fits in the head)", got)
	}
}

// TestFileCorrupt: a head that does not decode gives ErrCorrupt naming the
// file, and does not block the releases of other services while the index
// of active releases names it for none.
func TestFileCorrupt(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	first := deploytest.FullRecord("rel-0")
	first.Release.Service = "first"
	if err := f.Create(ctx, first); err != nil { // writes the index
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"truncated": `{"id":"truncated","rev":1,"rel`,
		"empty":     ``,
		"other-id":  `{"id":"someone-else","rev":1}`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.Load(ctx, name)
		if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%q) = %v, want ErrCorrupt naming %s", name, err, path)
		}
		r := deploytest.FullRecord(name)
		r.Rev = 1
		if err := f.Update(ctx, r); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("Update(%q) = %v, want ErrCorrupt", name, err)
		}
		if err := f.Create(ctx, deploytest.FullRecord(name)); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("Create(%q) over a corrupt file = %v, want ErrCorrupt", name, err)
		}
	}
	// A corrupt file does not block other releases.
	if err := f.Create(ctx, deploytest.FullRecord("rel-1")); err != nil {
		t.Errorf("Create beside corrupt files: %v", err)
	}
}

func TestFileInvalidID(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	for _, id := range []string{"", ".", "..", "../escape", "a/b", `a\b`, ".hidden", "nul\x00byte", "/abs"} {
		r := deploytest.FullRecord(id)
		check := func(call string, err error) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), "not a valid file name") || !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
				t.Errorf("%s(%q) = %v, want an error saying the id is not a valid file name", call, id, err)
			}
		}
		check("Create", f.Create(ctx, r))
		_, err := f.Load(ctx, id)
		check("Load", err)
		r.Rev = 1
		check("Update", f.Update(ctx, r))
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("directory holds %q after refused ids, want nothing", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a record escaped the store's directory: %v", err)
	}
}

func TestNewFileEmptyDir(t *testing.T) {
	if _, err := state.NewFile(""); err == nil || !strings.Contains(err.Error(), "dir") {
		t.Errorf(`NewFile("") = %v, want an error naming dir`, err)
	}
}

// TestFileSharedDirectory: two File values on one directory (two runners
// of one process) see each other's records.
func TestFileSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a, _ := state.NewFile(dir)
	b, _ := state.NewFile(dir)
	ctx := context.Background()
	r := deploytest.FullRecord("rel-1")
	if err := a.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, deploytest.FullRecord("rel-2")); !errors.Is(err, state.ErrActive) {
		t.Errorf("second store's Create = %v, want ErrActive", err)
	}
	got, err := b.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	got.Token++
	if err := b.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, r); !errors.Is(err, state.ErrFenced) {
		t.Errorf("Update with the old token through the first store = %v, want ErrFenced", err)
	}
}

// TestFileAcrossProcesses: several processes sharing a directory (here,
// this test binary started again) each increment a counter in one record
// with load, change, Update and a retry on ErrConflict. No update is lost,
// and of releases of one service created at once by all of them, one wins.
func TestFileAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("DEPLOYKIT_FILE_WORKER"); dir != "" {
		fileWorker(t, dir)
		return
	}
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("shared")
	r.Status, r.Step, r.Token = "succeeded", 0, 0
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	const workers, increments = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFileAcrossProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DEPLOYKIT_FILE_WORKER="+dir, fmt.Sprintf("DEPLOYKIT_FILE_WORKER_ID=%d", i), fmt.Sprintf("DEPLOYKIT_FILE_INCREMENTS=%d", increments))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("worker %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := f.Load(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != workers*increments || got.Rev != workers*increments+1 {
		t.Errorf("counter %d at rev %d, want %d at rev %d: updates were lost", got.Step, got.Rev, workers*increments, workers*increments+1)
	}
	active := 0
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, "race-") && strings.HasSuffix(n, ".json") {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active releases of one service were created at once, want 1: %v", active, names(t, dir))
	}
}

func fileWorker(t *testing.T, dir string) {
	f, err := state.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var n int
	fmt.Sscan(os.Getenv("DEPLOYKIT_FILE_INCREMENTS"), &n)
	for range n {
		for {
			r, err := f.Load(ctx, "shared")
			if err != nil {
				t.Fatal(err)
			}
			r.Step++
			err = f.Update(ctx, r)
			if err == nil {
				break
			}
			if !errors.Is(err, state.ErrConflict) {
				t.Fatal(err)
			}
		}
	}
	// Every worker starts a release of the same service at once.
	r := deploytest.FullRecord("race-" + os.Getenv("DEPLOYKIT_FILE_WORKER_ID"))
	r.Status = "running"
	if err := f.Create(ctx, r); err != nil && !errors.Is(err, state.ErrActive) {
		t.Fatal(err)
	}
}

// TestFileActiveIndex: Create finds the active release of a service through
// the index, sees through stale entries and rebuilds a missing or corrupt
// index from the records.
func TestFileActiveIndex(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	rec := func(id, service, status string) *state.Record {
		r := deploytest.FullRecord(id)
		r.Release.Service, r.Status = service, state.Status(status)
		return r
	}
	if err := f.Create(ctx, rec("a1", "a", "running")); err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx, rec("a2", "a", "running")); !errors.Is(err, state.ErrActive) {
		t.Fatalf("second active release of a: %v, want ErrActive", err)
	}
	// Finishing a1 frees the service.
	r, _ := f.Load(ctx, "a1")
	r.Status = "succeeded"
	if err := f.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx, rec("a2", "a", "running")); err != nil {
		t.Fatalf("after a1 finished: %v", err)
	}
	// A stale entry (its record gone) does not block.
	os.WriteFile(filepath.Join(dir, ".active.json"), []byte(`{"b\u0000production":"gone"}`), 0o600)
	if err := f.Create(ctx, rec("b1", "b", "running")); err != nil {
		t.Fatalf("stale entry: %v", err)
	}
	// A missing or corrupt index is rebuilt from the records: a2 and b1
	// are active.
	for _, broken := range []func(){
		func() { os.Remove(filepath.Join(dir, ".active.json")) },
		func() { os.WriteFile(filepath.Join(dir, ".active.json"), []byte(`{"a`), 0o600) },
	} {
		broken()
		if err := f.Create(ctx, rec("a3", "a", "running")); !errors.Is(err, state.ErrActive) {
			t.Errorf("rebuilt index: a3: %v, want ErrActive (a2 is active)", err)
		}
		if err := f.Create(ctx, rec("b2", "b", "running")); !errors.Is(err, state.ErrActive) {
			t.Errorf("rebuilt index: b2: %v, want ErrActive (b1 is active)", err)
		}
	}
}

// BenchmarkFileCreate: Create with 1,000 finished releases in the directory
// reads the index, not every record.
func BenchmarkFileCreate(b *testing.B) {
	f, err := state.NewFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		r := deploytest.FullRecord(fmt.Sprintf("old-%d", i))
		r.Status, r.Release.Service = "succeeded", fmt.Sprintf("svc-%d", i)
		if err := f.Create(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		r := deploytest.FullRecord(fmt.Sprintf("new-%d", i))
		r.Status = "running"
		r.Release.Service = fmt.Sprintf("new-%d", i)
		i++
		if err := f.Create(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}
