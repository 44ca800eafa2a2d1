//go:build unix

package flags_test

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/deploykit/deploy/flags"
)

// TestFlagdFileReplacesByRename checks each change is a new file (a new inode)
// renamed into place, with one link: the old file is neither rewritten in place
// nor kept alive by a hard link, which would hide the change from flagd.
func TestFlagdFileReplacesByRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	f := flags.NewFlagdFile(path)
	ctx := t.Context()
	if err := f.Define(ctx, flags.BoolFlag(flagKey, 0)); err != nil {
		t.Fatal(err)
	}
	stat := func() *syscall.Stat_t {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t)
	}
	// Hold the old file open, in the test only, so that its inode cannot be
	// reused by the new file and its link count can be read afterwards.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := f.SetShare(ctx, flagKey, float64(i+1)/10); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	oldInfo, err := old.Stat()
	if err != nil {
		t.Fatal(err)
	}
	before, after := oldInfo.Sys().(*syscall.Stat_t), stat()
	if after.Ino == before.Ino {
		t.Errorf("inode %d unchanged: the file was rewritten in place", after.Ino)
	}
	if before.Nlink != 0 {
		t.Errorf("old file has %d links after the change, want 0 (no hard link kept)", before.Nlink)
	}
	if after.Nlink != 1 {
		t.Errorf("new file has %d links, want 1", after.Nlink)
	}
	if share, err := f.Share(ctx, flagKey); err != nil || share < 0.1 || share > 0.8 {
		t.Errorf("Share = %v, %v", share, err)
	}
	onlyFile(t, dir)
}
