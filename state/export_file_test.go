package state

import "os"

// CurrentHead returns the current head in the head file at path, as Load
// finds it: the last whole line of a log of heads that matches its
// checksum, or the whole file in the earlier format.
func CurrentHead(path string) ([]byte, error) {
	head, _, err := HeadAndTail(path)
	return head, err
}

// HeadAndTail returns the current head in the head file at path and how
// many bytes follow its line: a torn append.
func HeadAndTail(path string) (head []byte, tail int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	hf, err := parseHeadFile(path, b)
	return hf.head, int64(len(b)) - hf.end, err
}

// MaxHeads is how many heads a head file holds before an Update starts a
// new one.
const MaxHeads = maxHeads

// CrashBeforeCut makes every compaction of a log of heads panic between
// the write of the new head and the cut, until the returned function is
// called.
func CrashBeforeCut() (undo func()) {
	crashBeforeCut = func() { panic("crash before the cut") }
	return func() { crashBeforeCut = nil }
}
