package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// TestFileRefusesCreateWhileUnreadableRecordMayBeActive: with the index of
// active releases lost and a running record unreadable, Create does not
// make a second active release. When the record's service can still be
// read, only that service is blocked; when it cannot, every service is.
// Either way the error matches ErrActive and ErrCorrupt and names the file,
// and setting the record aside unblocks.
func TestFileRefusesCreateWhileUnreadableRecordMayBeActive(t *testing.T) {
	for name, c := range map[string]struct {
		content      string
		blocksOthers bool
	}{
		"truncated":  {`{"id":"rel-1","rev":1,"release":{"service":"checkout","environment":"production"},"stat`, true},
		"empty":      {``, true},
		"wrong type": {`{"id":"rel-1","rev":"one","release":{"service":"checkout","environment":"production"},"status":"running"}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			f, dir := newFile(t)
			ctx := t.Context()
			if err := f.Create(ctx, deploytest.FullRecord("rel-1")); err != nil {
				t.Fatal(err)
			}
			head := filepath.Join(dir, "rel-1.json")
			os.WriteFile(head, []byte(c.content), 0o600)
			os.Remove(filepath.Join(dir, ".active.json"))

			second := deploytest.FullRecord("rel-2")
			err := f.Create(ctx, second)
			if !errors.Is(err, state.ErrActive) || !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), head) {
				t.Fatalf("Create of a second checkout/production release = %v, want ErrActive and ErrCorrupt naming %s", err, head)
			}
			other := deploytest.FullRecord("rel-3")
			other.Release.Service = "search"
			err = f.Create(ctx, other)
			if c.blocksOthers != (err != nil) {
				t.Fatalf("Create of search/production = %v, want it refused: %v", err, c.blocksOthers)
			}
			if err != nil && (!errors.Is(err, state.ErrActive) || !errors.Is(err, state.ErrCorrupt)) {
				t.Fatalf("Create of search/production = %v, want ErrActive and ErrCorrupt", err)
			}

			if err := f.Quarantine(ctx, "rel-1", "head lost to a disk fault"); err != nil {
				t.Fatal(err)
			}
			if err := f.Create(ctx, second); err != nil {
				t.Fatalf("Create once rel-1 was set aside: %v", err)
			}
			if err := f.Create(ctx, deploytest.FullRecord("rel-4")); !errors.Is(err, state.ErrActive) || errors.Is(err, state.ErrCorrupt) {
				t.Errorf("Create while rel-2 runs = %v, want ErrActive only", err)
			}
		})
	}
}

// TestFileRefusesCreateWhileIndexedRecordIsUnreadable: the index names a
// running release whose head no longer decodes: it may still run, so
// Create refuses with ErrActive and ErrCorrupt.
func TestFileRefusesCreateWhileIndexedRecordIsUnreadable(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	if err := f.Create(ctx, deploytest.FullRecord("rel-1")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rel-1.json"), []byte(`{"id":`), 0o600)
	err := f.Create(ctx, deploytest.FullRecord("rel-2"))
	if !errors.Is(err, state.ErrActive) || !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), "rel-1") {
		t.Errorf("Create = %v, want ErrActive and ErrCorrupt naming rel-1", err)
	}
}

// TestFileQuarantineKeepsFiles: a record set aside is moved, with its
// history, to .aside/<id>/ beside a reason.json, and the error of a later
// Load says where.
func TestFileQuarantineKeepsFiles(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	if err := f.Create(ctx, longRecord("rel-1")); err != nil {
		t.Fatal(err)
	}
	if err := f.Quarantine(ctx, "rel-1", "stuck"); err != nil {
		t.Fatal(err)
	}
	aside := filepath.Join(dir, ".aside", "rel-1")
	ents, err := os.ReadDir(aside)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if want := []string{"reason.json", "rel-1.json", "rel-1.jsonl"}; !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", aside, got, want)
	}
	if got := names(t, dir); !slices.Equal(got, []string{".aside"}) {
		t.Errorf("directory holds %q, want only .aside", got)
	}
	_, err = f.Load(ctx, "rel-1")
	var qe *state.QuarantineError
	if !errors.As(err, &qe) || qe.Where != aside || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("Load = %v, want a QuarantineError naming %s and the reason", err, aside)
	}
	// Another store on the directory sees it too.
	g, _ := state.NewFile(dir)
	if _, err := g.Load(ctx, "rel-1"); !errors.Is(err, state.ErrQuarantined) {
		t.Errorf("Load through another store = %v, want ErrQuarantined", err)
	}
}
