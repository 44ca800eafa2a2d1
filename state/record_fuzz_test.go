package state_test

import (
	"encoding/json"
	"testing"

	"github.com/deploykit/deploy/state"
)

// FuzzRecordJSON decodes outside data (a record file, a database row) into a
// Record the way every store does, and uses it: no shape of JSON panics, and
// what decodes survives Clone and a round trip.
func FuzzRecordJSON(f *testing.F) {
	f.Add([]byte(`null`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"r1","release":{"service":"s","version":"v2"},"status":"running","trigger":null,"outbox":[null]}`))
	f.Add([]byte(`{"release":null,"checklist":{"x":null},"baseline":{"m":{"value":1e400}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r state.Record
		if json.Unmarshal(data, &r) != nil {
			return
		}
		c := r.Clone()
		_ = r.Status.Final()
		_ = r.Release.Validate()
		if _, err := json.Marshal(c); err != nil {
			// NaN and Inf cannot come from JSON; anything decoded encodes.
			t.Fatalf("decoded record does not encode: %v", err)
		}
	})
}
