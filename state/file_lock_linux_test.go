package state_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// holdReleaseLock takes the lock of release id as another process would,
// an open file description lock of its byte of .locks/.releases, and
// returns the function that releases it.
func holdReleaseLock(t *testing.T, dir, id string) func() {
	t.Helper()
	h, err := os.OpenFile(filepath.Join(dir, ".locks", ".releases"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Start: state.ReleaseLockOffset(id), Len: 1}
	if err := syscall.FcntlFlock(h.Fd(), 37 /* F_OFD_SETLK */, &lk); err != nil {
		t.Fatal(err)
	}
	return func() { h.Close() }
}

// TestFileUpdateWaitsForItsReleaseLock: while another process holds the
// lock of a release, an Update of that release waits for it; Updates of
// other releases do not, and no lock file is created per release.
func TestFileUpdateWaitsForItsReleaseLock(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r1, r2 := deploytest.FullRecord("rel-1"), deploytest.FullRecord("rel-2")
	r2.Release.Service = "other"
	for _, r := range []*state.Record{r1, r2} {
		if err := f.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	release := holdReleaseLock(t, dir, "rel-1")
	update(t, f, r2)
	r1.Observed++
	finish := startWaiting(t, "Update of rel-1 while another process held its lock", func() error { return f.Update(ctx, r1) })
	release()
	finish()
	ents, err := os.ReadDir(filepath.Join(dir, ".locks"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != ".releases" {
		t.Errorf(".locks holds %v, want only .releases", ents)
	}
}
