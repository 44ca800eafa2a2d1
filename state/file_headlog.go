package state

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// A release's head file, "<id>.json", is a log of heads: one JSON object
// per line, each beginning with a checksum of itself,
//
//	{"crc":"1a2b3c4d","id":"rel-1","rev":7,...}
//
// where crc is the CRC-32C (Castagnoli), in hex, of the head's JSON object
// without that field: the line with `"crc":"…",` taken out, without its
// newline. The current head is the last line that is whole (ends in a
// newline) and matches its checksum. An Update appends its head and syncs
// the file: the file exists and keeps its name, so no rename and no sync
// of the directory are needed, and one sync makes the write durable. A
// crash in the middle of an append leaves a torn last line, which fails
// its checksum and is ignored; the next append, under the release's lock,
// cuts it off. A reader needs no lock: it reads the file from its end
// (headChunk bytes, more when the last whole head is longer) and takes the
// last line that is whole and matches its checksum, so a line being
// appended, which a reader may see in part, is not taken until it is all
// there; and a compaction (below) leaves the current line untouched until
// the cut that replaces it.
//
// When the log would grow past maxHeads times the new head's length, and
// whenever the record is final, the Update compacts the log to its new
// head instead, in place: it writes the new line at the start of the file,
// over heads that no longer count, syncs, then cuts the file after it and
// syncs again. Until the cut, the last line is still the previous head,
// which the write does not reach; the cut makes the new line the last; so
// a crash leaves either. That keeps the file, and what Load reads,
// bounded, and leaves a finished release one head long, without creating a
// file or touching the directory. When the new line is longer than the
// heads before the current one, or the file is in the earlier format, the
// new log is written whole through a temporary file, synced and renamed
// over the old, then the directory synced, as Create writes the first head.
//
// A head file that does not begin with `{"crc":"` was written whole by an
// earlier version, through a rename: its content is the head, with no
// checksum. The next Update replaces it with a log.

// maxHeads is how many heads of the length of the newest a head file holds
// before an Update compacts it.
const maxHeads = 8

// headChunk is how much of the end of a head file a read takes first.
const headChunk = 8 << 10

// crcPrefix begins every line of a log of heads; crcLen is the length of
// the checksum field with its separator, `{"crc":"01234567",`.
const (
	crcPrefix = `{"crc":"`
	crcLen    = len(crcPrefix) + 8 + 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// headFile is a release's head file as read: the current head, and where
// its line begins and ends.
type headFile struct {
	head []byte // the current head, a JSON object
	// log: the file is a log of heads; if not, it was written whole by an
	// earlier version and head is all of it.
	log bool
	// start and end are where the current head's line begins and ends:
	// the bytes before start are heads that no longer count, which a
	// compaction may write over; an append writes at end, cutting off what
	// a torn append left after it.
	start, end int64
}

// lineBuffers are the buffers heads are encoded in, kept between writes.
var lineBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeHeadLine encodes head, which encodes as a JSON object with
// fields, as a line of the log of heads, in buf: encoded after room for
// the checksum, which then takes the place of the object's opening brace.
// The line is buf's bytes.
func encodeHeadLine(buf *bytes.Buffer, head any) ([]byte, error) {
	buf.Reset()
	buf.WriteString(crcPrefix + `00000000"`) // crcLen-1 bytes, filled in below
	if err := json.NewEncoder(buf).Encode(head); err != nil {
		return nil, err
	}
	line := buf.Bytes()
	obj := line[crcLen-1 : len(line)-1] // without Encode's newline
	if len(obj) < 3 || obj[0] != '{' || obj[1] == '}' {
		return nil, fmt.Errorf("a head that is not a JSON object with fields: %.40s", obj)
	}
	sum := crc32.Checksum(obj, castagnoli)
	copy(line, crcPrefix)
	hex.Encode(line[len(crcPrefix):], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	line[crcLen-2] = '"'
	line[crcLen-1] = ',' // in place of the object's '{'
	return line, nil
}

// validLine reports whether line (without its newline) is a head whose
// checksum matches.
func validLine(line []byte) bool {
	if len(line) < crcLen || !bytes.HasPrefix(line, []byte(crcPrefix)) || line[crcLen-2] != '"' {
		return false
	}
	var want [4]byte
	if _, err := hex.Decode(want[:], line[len(crcPrefix):len(crcPrefix)+8]); err != nil {
		return false
	}
	rest := line[crcLen-1:] // `,…}` or `}`
	if rest[0] == ',' {
		rest = rest[1:]
	}
	sum := crc32.Update(crc32.Update(0, castagnoli, []byte{'{'}), castagnoli, rest)
	return sum == uint32(want[0])<<24|uint32(want[1])<<16|uint32(want[2])<<8|uint32(want[3])
}

// parseHeadFile finds the current head in b, the content of the head file
// at p. A log with no whole, valid line is corrupt.
func parseHeadFile(p string, b []byte) (headFile, error) {
	if !bytes.HasPrefix(b, []byte(crcPrefix)) {
		return headFile{head: b, end: int64(len(b))}, nil
	}
	if hf, ok := lastHead(b, 0); ok {
		return hf, nil
	}
	return headFile{}, fmt.Errorf("%w: %s holds no whole head that matches its checksum", ErrCorrupt, p)
}

// lastHead finds the last whole line that matches its checksum in b, the
// bytes of a log of heads from offset off to its end. When off > 0, b is
// a tail of the file, whose first line may begin before it: a line counts
// as whole only after a newline of b.
func lastHead(b []byte, off int64) (headFile, bool) {
	end := bytes.LastIndexByte(b, '\n') + 1
	for end > 0 {
		i := bytes.LastIndexByte(b[:end-1], '\n')
		if i < 0 && off > 0 {
			return headFile{}, false
		}
		if line := b[i+1 : end-1]; validLine(line) {
			return headFile{head: line, log: true, start: off + int64(i+1), end: off + int64(end)}, true
		}
		end = i + 1
	}
	return headFile{}, false
}

// readHeadFile finds the current head in the head file h, at p, reading
// it from its end: headChunk bytes, twice as many until they hold a whole
// head, or the whole file. (A file in the earlier format is read whole.)
// A read that ends before the size the file had when it began saw the file
// cut by a compaction, and may hold bytes from before and after it (the
// old current head cut off, the new one not yet read): it starts again,
// up to three times.
func readHeadFile(p string, h *os.File) (headFile, error) {
	for try := 1; ; try++ {
		st, err := h.Stat()
		if err != nil {
			return headFile{}, fmt.Errorf("state: %w", err)
		}
		size := st.Size()
		for chunk := int64(headChunk); ; chunk *= 2 {
			off := max(0, size-chunk)
			b := make([]byte, size-off)
			n, err := h.ReadAt(b, off)
			if err != nil && err != io.EOF {
				return headFile{}, fmt.Errorf("state: %w", err)
			}
			if n < len(b) && try < 3 {
				break // cut meanwhile: again
			}
			b = b[:n]
			if off == 0 {
				return parseHeadFile(p, b)
			}
			if hf, ok := lastHead(b, off); ok {
				return hf, nil
			}
		}
	}
}

// lastLine returns the last whole line of a log of heads whatever its
// checksum, or b itself if it is not a log: what salvageKey tries to read
// when no head is valid.
func lastLine(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte(crcPrefix)) {
		return b
	}
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return b
	}
	return b[bytes.LastIndexByte(b[:end], '\n')+1 : end]
}

// appendHead appends line to the log of heads of id after its current
// head, which ends at end, and syncs it. The caller holds the release's
// lock. A write or sync that fails leaves the file as it is: the line may
// already be read, as the head, by a Load that takes no lock, so it is not
// taken back (a torn line is ignored, as after a crash). The error then
// means that the Update's outcome is unknown, as after a crash at that
// point: a Load tells which head is current, and a caller that saved on
// the strength of its record finds it stale (ErrConflict).
func (f *File) appendHead(id string, end int64, line []byte) error {
	wrote, err := appendAt(f.headPath(id), false, end, line, "its current head ends at")
	if err != nil && wrote {
		return fmt.Errorf("%w (the update may or may not have been stored)", err)
	}
	return err
}

// crashBeforeCut, when set (by tests), is called by compactHead between
// the write of the new head and the cut: a panic there stops the
// compaction as a crash would.
var crashBeforeCut func()

// compactHead makes line, the new head of id, the only line of its log of
// heads, whose current head begins at start, with len(line) <= start:
// line written at the start of the file and synced, then the file cut
// after it and synced. The caller holds the release's lock. An error after
// the cut leaves the new head current, maybe not durable, as a crash at
// that point would; a Load tells which head is current.
func (f *File) compactHead(id string, start int64, line []byte) error {
	if int64(len(line)) > start {
		panic("state: compactHead would write over the current head")
	}
	p := f.headPath(id)
	h, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer h.Close()
	if _, err := h.WriteAt(line, 0); err != nil {
		return fmt.Errorf("state: writing %s: %w", p, err)
	}
	if err := fdatasync(h); err != nil {
		return fmt.Errorf("state: syncing %s: %w", p, err)
	}
	if crashBeforeCut != nil {
		crashBeforeCut()
	}
	// The moment the new head counts.
	if err := h.Truncate(int64(len(line))); err != nil {
		return fmt.Errorf("state: cutting %s: %w", p, err)
	}
	if err := fdatasync(h); err != nil {
		return fmt.Errorf("state: syncing %s: %w", p, err)
	}
	return h.Close()
}
