package gate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

// ApprovalFile{Path: "approvals/{version}/{service}"} with the version
// "../approvals/v1" passed using v1's approval (issue 12).
func TestApprovalFileRefusesTraversal(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "approvals", "v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "approvals", "v1", "checkout"), []byte("approved by alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &gate.Approval{Approver: gate.ApprovalFile{Path: filepath.Join(dir, "approvals", "{version}", "{service}")}}
	for _, version := range []string{"../approvals/v1", "..", ".", "", `..\approvals\v1`, "v1\x00"} {
		d := *dep
		d.Release.Version = version
		err := a.Check(t.Context(), &d)
		if err == nil {
			t.Errorf("version %q passed", version)
		} else if _, retry := deploy.IsRetry(err); retry || !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("version %q: err = %v, want ErrInvalid", version, err)
		}
	}
	d := *dep
	d.Release.Version = "v1"
	if err := a.Check(t.Context(), &d); err != nil {
		t.Errorf("v1 itself: %v", err)
	}
}

// One gate.Manual approval passed every release that shared the approver
// (issue 12).
func TestManualApprovalIsBoundToItsRelease(t *testing.T) {
	m := &gate.Manual{}
	a := &gate.Approval{Approver: m}
	other := *dep
	other.ID, other.Release.Version = "checkout-v3-1", "v3"
	if err := m.Approve(gate.For{ID: dep.ID}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(t.Context(), dep); err != nil {
		t.Errorf("the approved release: %v", err)
	}
	if _, ok := deploy.IsRetry(a.Check(t.Context(), &other)); !ok {
		t.Error("another release sharing the approver is not pending")
	}
	// By service and version, in one environment.
	if err := m.Approve(gate.For{Service: "checkout", Version: "v3", Environment: "staging"}, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok := deploy.IsRetry(a.Check(t.Context(), &other)); !ok {
		t.Error("a staging approval passed production")
	}
	if err := m.Approve(gate.For{}, "mallory"); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("an approval of nothing in particular: %v, want ErrInvalid", err)
	}
}

func TestManualApprovalOfOneStep(t *testing.T) {
	m := &gate.Manual{}
	a := &gate.Approval{Approver: m}
	m.Approve(gate.For{ID: dep.ID, Stage: "production", Step: 2}, "alice")
	step := *dep
	step.Step = 1 // the second step
	if err := a.Check(t.Context(), &step); err != nil {
		t.Errorf("the approved step: %v", err)
	}
	step.Step = 2
	if _, ok := deploy.IsRetry(a.Check(t.Context(), &step)); !ok {
		t.Error("the third step passed with the second's approval")
	}
	// A step-bound rejection outranks a release-wide approval.
	m.Approve(gate.For{ID: dep.ID}, "alice")
	m.Reject(gate.For{ID: dep.ID, Step: 3}, "bob", "not on a Friday")
	wantBlock(t, a.Check(t.Context(), &step), "rejected by bob: not on a Friday")
	m.Reset(gate.For{ID: dep.ID, Step: 3})
	if err := a.Check(t.Context(), &step); err != nil {
		t.Errorf("after Reset of the step: %v", err)
	}
}

func TestParseDecisionDropsControlCharacters(t *testing.T) {
	d, err := gate.ParseDecision("approved by \x1b[2Jal\rice\u202e")
	if err != nil || d.By != "[2Jalice" {
		t.Errorf("ParseDecision = %+v, %v", d, err)
	}
}
