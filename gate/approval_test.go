package gate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

func TestParseDecision(t *testing.T) {
	cases := []struct {
		in   string
		want gate.Decision
		err  string
	}{
		{"approved by alice\n", gate.Decision{Verdict: gate.Approved, By: "alice"}, ""},
		{"  Approved by Alice Smith: looks good ", gate.Decision{Verdict: gate.Approved, By: "Alice Smith", Reason: "looks good"}, ""},
		{"rejected by bob: too risky before the sale", gate.Decision{Verdict: gate.Rejected, By: "bob", Reason: "too risky before the sale"}, ""},
		{"rejected: no rollback plan", gate.Decision{Verdict: gate.Rejected, Reason: "no rollback plan"}, ""},
		{"pending", gate.Decision{Verdict: gate.Pending}, ""},
		{"", gate.Decision{Verdict: gate.Pending}, ""},
		{"approved by carol\nsigned off in the CAB", gate.Decision{Verdict: gate.Approved, By: "carol"}, ""},
		{"approved", gate.Decision{}, `approval "approved" does not say who approved`},
		{"lgtm", gate.Decision{}, `unrecognised approval "lgtm": want "approved by NAME"`},
		{"approved alice", gate.Decision{}, `unrecognised approval "approved alice"`},
	}
	for _, c := range cases {
		got, err := gate.ParseDecision(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDecision(%q) = %v, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDecision(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseDecision(%q) (-want +got):\n%s", c.in, diff)
		}
		if c.want.Verdict != gate.Pending || c.want.Reason != "" {
			back, err := gate.ParseDecision(got.String())
			if err != nil || back != got {
				t.Errorf("ParseDecision(%q.String() = %q) = %v, %v; want it back", c.in, got.String(), back, err)
			}
		}
	}
}

func TestApprovalFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		a := &gate.Approval{Approver: gate.ApprovalFile{Path: filepath.Join(dir, "{service}", "{version}", "{environment}")}, Poll: 5 * time.Minute, CodeReview: true}
		path := filepath.Join(dir, "checkout", "v2", "production")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if got, err := (gate.ApprovalFile{Path: filepath.Join(dir, "{id}")}).PathFor(dep); err != nil || got != filepath.Join(dir, "checkout-v2-1") {
			t.Errorf("PathFor = %q, %v", got, err)
		}

		wantRetry(t, a.Check(t.Context(), dep), time.Now().Add(5*time.Minute), `approval pending: write "approved by NAME" to `+path)
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("")
		wantRetry(t, a.Check(t.Context(), dep), time.Now().Add(5*time.Minute), "approval pending")
		write("pending\n")
		wantRetry(t, a.Check(t.Context(), dep), time.Now().Add(5*time.Minute), "approval pending: "+path+" says pending")
		write("rejected by bob: too risky before the sale\n")
		wantBlock(t, a.Check(t.Context(), dep), "rejected by bob: too risky before the sale")
		write("LGTM")
		wantBlock(t, a.Check(t.Context(), dep), "approval could not be read: "+path+`: unrecognised approval "LGTM"`)
		write("approved by alice\n")
		if err := a.Check(t.Context(), dep); err != nil {
			t.Errorf("approved: %v", err)
		}
		if diff := cmp.Diff([]deploy.Item{deploy.ItemCodeReviewed}, a.ChecklistItems()); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		// An unreadable path blocks: a directory cannot be read as a file.
		b := &gate.Approval{Approver: gate.ApprovalFile{Path: dir}}
		wantBlock(t, b.Check(t.Context(), dep), "approval could not be read")
	})
}

func TestApprovalManual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &gate.Manual{}
		a := &gate.Approval{Approver: m}
		if a.ChecklistItems() != nil {
			t.Errorf("items = %v without CodeReview, want none", a.ChecklistItems())
		}
		wantRetry(t, a.Check(t.Context(), dep), time.Now().Add(gate.DefaultPoll), "approval pending: waiting for a person to approve checkout v2 (checkout-v2-1)")
		this := gate.For{ID: dep.ID}
		m.Approve(this, "alice")
		if err := a.Check(t.Context(), dep); err != nil {
			t.Errorf("approved: %v", err)
		}
		m.Reject(this, "bob", "error budget spent")
		wantBlock(t, a.Check(t.Context(), dep), "rejected by bob: error budget spent")
		m.Reset(this)
		wantRetry(t, a.Check(t.Context(), dep), time.Now().Add(gate.DefaultPoll), "approval pending")

		// Another goroutine approves while the gate waits.
		go func() {
			time.Sleep(90 * time.Second)
			m.Approve(this, "carol")
		}()
		for {
			err := a.Check(t.Context(), dep)
			at, ok := deploy.IsRetry(err)
			if !ok {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			time.Sleep(time.Until(at))
		}
		if got := time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); got != 2*time.Minute {
			t.Errorf("approved after %v, want 2m (the first poll after the approval)", got)
		}
	})
}

func TestApprovalFuncAndValidate(t *testing.T) {
	a := &gate.Approval{Approver: gate.ApproverFunc(func(ctx context.Context, d *deploy.Deployment) (gate.Decision, error) {
		return gate.Decision{}, errors.New("ticket system down")
	})}
	wantBlock(t, a.Check(t.Context(), dep), "approval could not be read: ticket system down")

	for _, c := range []struct {
		a    gate.Approval
		want string
	}{
		{gate.Approval{}, "gate.Approval: Approver is nil"},
		{gate.Approval{Approver: &gate.Manual{}, Poll: -time.Second}, "Poll -1s is negative"},
	} {
		if err := c.a.Validate(); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want ErrInvalid naming %q", err, c.want)
		}
		wantBlock(t, c.a.Check(t.Context(), dep), c.want)
	}
	wantBlock(t, (&gate.Approval{Approver: gate.ApprovalFile{}}).Check(t.Context(), dep), "gate.ApprovalFile: Path is empty")
}
