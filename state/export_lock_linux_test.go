package state

// ReleaseLockOffset is the byte of ".locks/.releases" that is the lock of
// release id.
func ReleaseLockOffset(id string) int64 { return releaseLockOffset(id) }
