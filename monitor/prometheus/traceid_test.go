package prometheus

import "testing"

func TestTraceIDAcceptsOnlyIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"4bf92f3577b34da6a3ce929d0e0e4736": true, "bad-000124": true, "a_b": true,
		"": false, "<script>": false, "id with spaces": false, "x](http://evil)": false,
		"0123456789012345678901234567890123456789012345678901234567890123X": false,
	} {
		if got := traceID(id); got != want {
			t.Errorf("traceID(%q) = %v, want %v", id, got, want)
		}
	}
}
