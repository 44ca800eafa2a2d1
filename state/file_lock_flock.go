//go:build unix && !linux

package state

import "path/filepath"

// lockReleaseFile takes the cross-process lock of release id, an exclusive
// flock(2) of its own file ".locks/<id>", and returns the function that
// releases it.
func lockReleaseFile(dir, id string) (func(), error) {
	return flock(filepath.Join(dir, locksDir, id))
}
