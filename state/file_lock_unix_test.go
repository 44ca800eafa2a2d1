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
	back := r.Clone()
	back.Status = state.Running
	finish := startWaiting(t, "Update back to running while the directory lock was held", func() error { return f.Update(ctx, back) })
	release()
	finish()
}

// startWaiting runs call in a goroutine that should wait for a lock another
// process holds, and fails the test if call has already returned; finish,
// called once the lock is released, waits for call and fails on its error.
// Not proof that call waits (it may not have started yet), but a call that
// skipped the lock would usually be caught.
func startWaiting(t *testing.T, what string, call func() error) (finish func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		t.Fatalf("%s: returned (%v) at once", what, err)
	default:
	}
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}
