//go:build unix

package state_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// holdFlock takes the flock another process would hold on path, and
// returns the function that releases it.
func holdFlock(t *testing.T, path string) func() {
	t.Helper()
	h, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(h.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { h.Close() }
}

// TestFileUpdateHoldsOnlyItsReleaseLock: while another process holds the
// directory's lock, Updates that save a running release or finish it go
// through (they need the lock of their release only); one that brings the
// release back to running waits for the directory, as Create does.
func TestFileUpdateHoldsOnlyItsReleaseLock(t *testing.T) {
	f, dir := newFile(t)
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	if err := f.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	release := holdFlock(t, filepath.Join(dir, ".lock"))
	r.Timeline = append(r.Timeline, r.Timeline[0])
	if err := f.Update(ctx, r); err != nil {
		t.Fatalf("Update of a running release while another process holds the directory lock: %v", err)
	}
	r.Status = state.Succeeded
	if err := f.Update(ctx, r); err != nil {
		t.Fatalf("Update finishing a release while another process holds the directory lock: %v", err)
	}
	done := make(chan error)
	go func() {
		back := r.Clone()
		back.Status = state.Running
		done <- f.Update(ctx, back)
	}()
	// Not proof that it waits (it may not have started yet), but an Update
	// back to running that skipped the directory lock would usually be
	// caught here.
	select {
	case err := <-done:
		t.Fatalf("Update back to running returned (%v) while the directory lock was held", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
