//go:build !unix

package promtest

// lockFile does not lock where advisory locks are not available; Start's
// check that the server on the port is its own still catches a collision.
func lockFile(string) (func(), error) { return func() {}, nil }
