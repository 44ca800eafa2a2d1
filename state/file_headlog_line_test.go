package state

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestHeadLineChecksumCoversEveryByte: a line of the log of heads is its
// head's JSON with the checksum as its first field, and a change of any of
// its bytes makes it invalid.
func TestHeadLineChecksumCoversEveryByte(t *testing.T) {
	var buf bytes.Buffer
	line, err := encodeHeadLine(&buf, fileHead{Record: &Record{ID: "rel-1", Rev: 7, Status: Running}, History: &historyMark{Size: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if line[len(line)-1] != '\n' || !validLine(line[:len(line)-1]) {
		t.Fatalf("encoded line %q is not valid", line)
	}
	var h struct {
		CRC string `json:"crc"`
		ID  string `json:"id"`
		Rev int64  `json:"rev"`
	}
	if err := json.Unmarshal(line, &h); err != nil || len(h.CRC) != 8 || h.ID != "rel-1" || h.Rev != 7 {
		t.Fatalf("line %q decodes as %+v, %v", line, h, err)
	}
	for i := range len(line) - 1 {
		bad := append([]byte(nil), line[:len(line)-1]...)
		bad[i] ^= 0x01
		if validLine(bad) {
			t.Errorf("line with byte %d changed (%q) is still valid", i, bad)
		}
	}
	if _, err := encodeHeadLine(&buf, struct{}{}); err == nil {
		t.Error("encodeHeadLine of an object without fields succeeded")
	}
}

// FuzzHeadFile: whatever bytes a head file holds, reading it neither
// panics nor takes a line that does not match its checksum, and a valid
// head followed by any bytes without a newline (a torn append) is still
// the one read, from the whole file and from its end.
func FuzzHeadFile(f *testing.F) {
	var buf bytes.Buffer
	line, err := encodeHeadLine(&buf, fileHead{Record: &Record{ID: "rel-1", Rev: 2}, History: &historyMark{}})
	if err != nil {
		f.Fatal(err)
	}
	line = bytes.Clone(line)
	f.Add([]byte(nil))
	f.Add(line)
	f.Add(append(bytes.Clone(line), line[:20]...))
	f.Add([]byte(`{"id":"rel-1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if hf, err := parseHeadFile("p", b); err == nil && hf.log {
			if !validLine(hf.head) || hf.start < 0 || hf.end > int64(len(b)) || hf.end-hf.start != int64(len(hf.head))+1 {
				t.Fatalf("parseHeadFile(%q) = %+v", b, hf)
			}
		}
		torn := bytes.ReplaceAll(b, []byte("\n"), nil)
		file := append(append(bytes.Clone(line), line...), torn...)
		hf, err := parseHeadFile("p", file)
		if err != nil || !bytes.Equal(hf.head, line[:len(line)-1]) || hf.end != int64(2*len(line)) || hf.start != int64(len(line)) {
			t.Fatalf("a head followed by %q: %+v, %v", torn, hf, err)
		}
		for off := 1; off < len(file); off += 7 {
			if tail, ok := lastHead(file[off:], int64(off)); ok && (tail.end != hf.end || tail.start != hf.start) {
				t.Fatalf("from offset %d: %+v, want %+v", off, tail, hf)
			}
		}
	})
}
