//go:build !unix

package state

// flock does nothing where flock(2) is not available: there, a File is
// safe within one process only.
func flock(path string) (func(), error) { return func() {}, nil }

// lockReleaseFile does nothing either.
func lockReleaseFile(dir, id string) (func(), error) { return func() {}, nil }
