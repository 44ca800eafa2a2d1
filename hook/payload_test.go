package hook_test

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy/hook"
)

// TestFixturesAreFlaggersShape decodes the payloads of Flagger's own
// documentation into Flagger's struct, refusing unknown fields.
func TestFixturesAreFlaggersShape(t *testing.T) {
	for _, f := range []string{"testdata/flagger-payload.json", "testdata/flagger-event-payload.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := decodeFlagger(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if p.Name != "podinfo" || p.Phase != "Progressing" || p.Checksum != "85d557f47b" || len(p.Metadata) == 0 {
			t.Errorf("%s decoded to %+v", f, p)
		}
	}
}

// TestPayloadDecodesAsFlaggers checks that what the hooks send is Flagger's
// payload field for field: the same JSON keys as the fixture, and every
// value read back by Flagger's struct.
func TestPayloadDecodesAsFlaggers(t *testing.T) {
	fixture, err := os.ReadFile("testdata/flagger-payload.json")
	if err != nil {
		t.Fatal(err)
	}
	ours := hook.Payload{Name: "podinfo", Namespace: "test", Phase: hook.PhaseProgressing, Checksum: "85d557f47b",
		Metadata: map[string]string{"test": "all", "token": "16688eb5e9f289f1991c"}}
	b, err := json.Marshal(ours)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeFlagger(b)
	if err != nil {
		t.Fatalf("Flagger's struct refuses our payload %s: %v", b, err)
	}
	want, _ := decodeFlagger(fixture)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("payload read by Flagger's struct (-fixture +ours):\n%s", d)
	}
	keys := func(b []byte) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	if d := cmp.Diff(keys(fixture), keys(b)); d != "" {
		t.Errorf("JSON keys (-fixture +ours):\n%s", d)
	}
	// Without metadata, the key is left out, as Flagger's omitempty does.
	b, _ = json.Marshal(hook.Payload{Name: "podinfo", Namespace: "test", Phase: hook.PhaseSucceeded, Checksum: "x"})
	if d := cmp.Diff([]string{"checksum", "name", "namespace", "phase"}, keys(b)); d != "" {
		t.Errorf("JSON keys without metadata (-want +got):\n%s", d)
	}
}

func TestChecksumIdentifiesTheRelease(t *testing.T) {
	a := hook.Checksum("checkout-v2-1", "checkout", "v2", "production")
	if len(a) != 10 || a != hook.Checksum("checkout-v2-1", "checkout", "v2", "production") {
		t.Errorf("checksum %q is not a stable 10-digit hash", a)
	}
	for _, other := range []string{
		hook.Checksum("checkout-v3-1", "checkout", "v3", "production"),
		hook.Checksum("checkout-v2-1", "checkout", "v2", "staging"),
	} {
		if other == a {
			t.Errorf("two releases share checksum %q", a)
		}
	}
}
