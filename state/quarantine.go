package state

import (
	"context"
	"fmt"
	"time"
)

// Quarantiner is implemented by stores that can set a record aside: a record
// that cannot be read, or whose holder is gone for good, so that its service
// is not blocked until someone deletes a file or a row by hand. [Memory],
// [File] and state/postgres implement it.
//
// Quarantine sets the record id aside with a reason (required; it is shown
// in every later error about the record) and the time it is called. From
// then on the record:
//
//   - no longer counts as active, so a new release of its service and
//     environment may be created;
//   - keeps its id: Create with it fails with [ErrExists];
//   - gives a [*QuarantineError], which matches [ErrQuarantined], to Load,
//     Update and Quarantine, with the reason, the time and where the store
//     kept the data (a file name, a table), so a person can look at it.
//
// Quarantine ignores leases and fencing tokens and does not need to read
// the record: it is an operator's decision, for a record that is unreadable
// or stuck. A runner still driving the record gets the error at its next
// Update and must stop. It fails with [ErrNotFound] when there is no record
// id. It is safe for concurrent use with every other method of the store.
type Quarantiner interface {
	Quarantine(ctx context.Context, id, reason string) error
}

// QuarantineError is the error about a record that was set aside with
// [Quarantiner]. It matches [ErrQuarantined].
type QuarantineError struct {
	ID     string
	Reason string
	At     time.Time
	// Where names where the store keeps the record's data now: files, a
	// table. Empty for the Memory store.
	Where string
}

func (e *QuarantineError) Error() string {
	s := fmt.Sprintf("state: record %s was set aside at %s: %s", e.ID, e.At.UTC().Format(time.RFC3339), e.Reason)
	if e.Where != "" {
		s += " (kept in " + e.Where + ")"
	}
	return s
}

// Unwrap returns [ErrQuarantined].
func (e *QuarantineError) Unwrap() error { return ErrQuarantined }

// checkReason refuses a Quarantine without a reason.
func checkReason(id, reason string) error {
	if reason == "" {
		return fmt.Errorf("state: Quarantine of %s needs a reason", id)
	}
	return nil
}

// CheckQuarantine is for stores in other packages: it returns the error for
// a Quarantine call without an id or a reason, or nil.
func CheckQuarantine(id, reason string) error {
	if id == "" {
		return fmt.Errorf("state: Quarantine needs a record id")
	}
	return checkReason(id, reason)
}
