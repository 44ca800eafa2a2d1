package gate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
// "{service}-{version}" let service "checkout-v2" with version "x" use the
// approval of service "checkout" with version "v2-x".
func TestApprovalFileRefusesAmbiguousTemplate(t *testing.T) {
	for _, p := range []string{"a/{service}-{version}", "{id}{version}", "x/{service}.{environment}"} {
		if _, err := (gate.ApprovalFile{Path: p}).PathFor(dep); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("PathFor with %q: %v, want ErrInvalid", p, err)
		}
	}
	if _, err := (gate.ApprovalFile{Path: "a/{service}/{version}-approval"}).PathFor(dep); err != nil {
		t.Errorf("separated placeholders: %v", err)
	}
}

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
	if _, ok := deploy.IsRetry(a.Check(t.Context(), &step)); !ok {
		t.Error("a step's approval passed a preflight gate at that step's index")
	}
	step.Phase = deploy.PhaseDeploy
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

// FuzzApprovalFilePath renders the path template with any release fields:
// an accepted path stays under the template's directory, one file per
// release.
func FuzzApprovalFilePath(f *testing.F) {
	f.Add("checkout", "v2", "production")
	f.Add("..", "../approvals/v1", "a/b")
	f.Add("x\\..\\y", ".", "\x00")
	f.Fuzz(func(t *testing.T, service, version, env string) {
		root := filepath.Join(string(filepath.Separator)+"approvals", "root")
		af := gate.ApprovalFile{Path: filepath.Join(root, "{environment}", "{service}", "{version}")}
		d := *dep
		d.Release.Service, d.Release.Version, d.Release.Environment = service, version, env
		p, err := af.PathFor(&d)
		if err != nil {
			if !errors.Is(err, deploy.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		rel, err := filepath.Rel(root, filepath.Clean(p))
		if err != nil || rel != filepath.Join(env, service, version) || strings.Count(rel, string(filepath.Separator)) != 2 {
			t.Fatalf("fields %q %q %q gave %q (%q under the root)", service, version, env, p, rel)
		}
	})
}
