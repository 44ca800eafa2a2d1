package state_test

import (
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

func TestMemoryConformance(t *testing.T) {
	if err := deploytest.TestStore(func() (state.Store, error) { return state.NewMemory(), nil }); err != nil {
		t.Fatal(err)
	}
}

func TestZeroMemoryConformance(t *testing.T) {
	if err := deploytest.TestStore(func() (state.Store, error) { return new(state.Memory), nil }); err != nil {
		t.Fatal(err)
	}
}

func TestFileConformance(t *testing.T) {
	if err := deploytest.TestStore(func() (state.Store, error) { return state.NewFile(t.TempDir()) }); err != nil {
		t.Fatal(err)
	}
}

func TestCloneIsDeep(t *testing.T) {
	r := deploytest.FullRecord("rel-1")
	c := r.Clone()
	*c.Trigger.Observed = 42
	c.Release.Labels["team"] = "other"
	c.Outbox[0].Attempts = 42
	if *r.Trigger.Observed == 42 || r.Release.Labels["team"] == "other" || r.Outbox[0].Attempts == 42 {
		t.Errorf("changing a clone changed the original: %+v", r)
	}
}

func TestStatusFinal(t *testing.T) {
	for s, want := range map[state.Status]bool{
		state.Running: false, "": false,
		state.Succeeded: true, state.RolledBack: true, state.Failed: true,
		state.Blocked: true, state.Aborted: true, state.RollbackFailed: true,
	} {
		if got := s.Final(); got != want {
			t.Errorf("Status(%q).Final() = %v, want %v", s, got, want)
		}
	}
}
