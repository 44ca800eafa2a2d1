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
