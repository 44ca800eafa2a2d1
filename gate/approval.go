package gate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy"
)

// DefaultPoll is how soon a pending approval or CI status is checked again
// when the gate's Poll is zero.
const DefaultPoll = time.Minute

// Verdict is the state of an approval.
type Verdict string

// Verdicts.
const (
	Pending  Verdict = "pending"
	Approved Verdict = "approved"
	Rejected Verdict = "rejected"
)

// Decision is a person's answer to an approval request: who decided, and why.
type Decision struct {
	Verdict Verdict
	// By is who decided ("alice").
	By string
	// Reason says why: a rejection's reason, or for a pending decision what
	// it waits for.
	Reason string
}

// String writes d as an approval file holds it: "approved by alice",
// "rejected by bob: too risky before the sale", "pending". ParseDecision reads
// it back.
func (d Decision) String() string {
	s := string(d.Verdict)
	if s == "" {
		s = string(Pending)
	}
	if d.By != "" {
		s += " by " + d.By
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}

// ParseDecision reads a decision written as "approved by NAME",
// "rejected by NAME: REASON", "rejected: REASON" or "pending", ignoring case
// in the verdict, surrounding space and lines after the first. Empty text is
// pending. An approval must say who approved.
func ParseDecision(text string) (Decision, error) {
	s, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return Decision{Verdict: Pending}, nil
	}
	var dec Decision
	head, reason, _ := strings.Cut(s, ":")
	dec.Reason = strings.TrimSpace(reason)
	verdict, rest, _ := strings.Cut(strings.TrimSpace(head), " ")
	dec.Verdict = Verdict(strings.ToLower(verdict))
	rest = strings.TrimSpace(rest)
	if rest != "" {
		by, ok := strings.CutPrefix(rest, "by ")
		if !ok {
			return Decision{}, badDecision(text)
		}
		dec.By = strings.TrimSpace(by)
	}
	switch dec.Verdict {
	case Pending, Rejected:
	case Approved:
		if dec.By == "" {
			return Decision{}, fmt.Errorf("approval %q does not say who approved: want \"approved by NAME\"", s)
		}
	default:
		return Decision{}, badDecision(text)
	}
	return dec, nil
}

func badDecision(text string) error {
	return fmt.Errorf("unrecognised approval %q: want \"approved by NAME\", \"rejected by NAME: REASON\" or \"pending\"", strings.TrimSpace(text))
}

// Approver reports the decision on a release. An error means the decision
// could not be read; [Approval] blocks the release with it.
type Approver interface {
	Approval(ctx context.Context, d *deploy.Deployment) (Decision, error)
}

// ApproverFunc adapts a function to an [Approver].
type ApproverFunc func(ctx context.Context, d *deploy.Deployment) (Decision, error)

// Approval calls f(ctx, d).
func (f ApproverFunc) Approval(ctx context.Context, d *deploy.Deployment) (Decision, error) {
	return f(ctx, d)
}

// Approval is a manual approval: a person approving the release. It passes
// when its Approver says approved, blocks when it says rejected, and while it
// is pending asks the runner to check again after Poll, with a
// [deploy.RetryAt] error ("approval pending: …"). Use it as a gate
// (WithGates) or for steps that need approval (WithApproval).
type Approval struct {
	// Approver gives the decision. Required: an [ApprovalFile], a [*Manual]
	// or an [ApproverFunc].
	Approver Approver
	// Poll is how soon a pending approval is asked again; 0 means DefaultPoll.
	Poll time.Duration
	// CodeReview makes the approval stand for "Code reviewed and approved"
	// (deploy.ItemCodeReviewed) in the checklist.
	CodeReview bool
}

var (
	_ deploy.Gate        = (*Approval)(nil)
	_ deploy.Checklister = (*Approval)(nil)
)

// Name returns "approval".
func (a *Approval) Name() string { return "approval" }

// Validate reports a nil Approver and a negative Poll.
func (a *Approval) Validate() error {
	var p problems
	if a.Approver == nil {
		p.add("Approver is nil")
	}
	if a.Poll < 0 {
		p.add("Poll %v is negative", a.Poll)
	}
	return p.err("Approval")
}

// ChecklistItems returns deploy.ItemCodeReviewed when CodeReview is set,
// else nothing.
func (a *Approval) ChecklistItems() []deploy.Item {
	if a.CodeReview {
		return []deploy.Item{deploy.ItemCodeReviewed}
	}
	return nil
}

// Check asks the Approver: approved passes, rejected blocks with who
// rejected and why, pending returns deploy.RetryAt(now+Poll).
func (a *Approval) Check(ctx context.Context, d *deploy.Deployment) error {
	if err := a.Validate(); err != nil {
		return err
	}
	dec, err := a.Approver.Approval(ctx, d)
	if err != nil {
		return fmt.Errorf("approval could not be read: %w", err)
	}
	switch dec.Verdict {
	case Approved:
		deploy.Evidence(ctx, "%s", dec.String())
		return nil
	case Rejected:
		return errors.New(dec.String())
	case Pending, "":
		poll := a.Poll
		if poll == 0 {
			poll = DefaultPoll
		}
		why := dec.Reason
		if why == "" {
			why = "no decision yet"
		}
		return deploy.RetryAt(time.Now().Add(poll), "approval pending: "+why)
	default:
		return fmt.Errorf("approval: unknown verdict %q", dec.Verdict)
	}
}

// ApprovalFile is an [Approver] for command-line tools: a file whose content
// is the decision, as [ParseDecision] reads it ("approved by alice",
// "rejected by bob: reason"). A missing or empty file is pending. A person
// approves by writing the file, for example with
//
//	echo "approved by alice" > .deploy/approvals/checkout-v2
type ApprovalFile struct {
	// Path is the file. It may contain {id}, {service}, {version} and
	// {environment}, replaced with the release's, so that one ApprovalFile
	// serves every release.
	Path string
}

var _ Approver = ApprovalFile{}

// PathFor returns the file that holds the decision on d.
func (f ApprovalFile) PathFor(d *deploy.Deployment) string {
	return strings.NewReplacer(
		"{id}", d.ID,
		"{service}", d.Release.Service,
		"{version}", d.Release.Version,
		"{environment}", d.Release.Environment,
	).Replace(f.Path)
}

// Approval reads the decision from the file.
func (f ApprovalFile) Approval(ctx context.Context, d *deploy.Deployment) (Decision, error) {
	if f.Path == "" {
		return Decision{}, fmt.Errorf("%w: gate.ApprovalFile: Path is empty", deploy.ErrInvalid)
	}
	path := f.PathFor(d)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && strings.TrimSpace(string(b)) == "") {
		return Decision{Verdict: Pending, Reason: fmt.Sprintf("write \"approved by NAME\" to %s", path)}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	dec, err := ParseDecision(string(b))
	if err != nil {
		return Decision{}, fmt.Errorf("%s: %w", path, err)
	}
	if dec.Verdict == Pending && dec.Reason == "" {
		dec.Reason = fmt.Sprintf("%s says pending", path)
	}
	return dec, nil
}

// Manual is an [Approver] for programs: a chat command or a web handler calls
// Approve or Reject, and the gate sees the decision at its next check.
// The zero value is pending. A Manual is safe for concurrent use.
//
// Its decision holds for every check until Reset, so used for step approvals
// (WithApproval) one Approve lets every later step through; call Reset after
// each step to ask again.
type Manual struct {
	mu  sync.Mutex
	dec Decision
}

var _ Approver = (*Manual)(nil)

// Approve records an approval by by.
func (m *Manual) Approve(by string) { m.set(Decision{Verdict: Approved, By: by}) }

// Reject records a rejection by by, for reason.
func (m *Manual) Reject(by, reason string) {
	m.set(Decision{Verdict: Rejected, By: by, Reason: reason})
}

// Reset makes the decision pending again.
func (m *Manual) Reset() { m.set(Decision{Verdict: Pending}) }

func (m *Manual) set(d Decision) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dec = d
}

// Approval returns the recorded decision; the zero Manual is pending.
func (m *Manual) Approval(ctx context.Context, d *deploy.Deployment) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dec := m.dec
	if dec.Verdict == "" {
		dec.Verdict = Pending
	}
	if dec.Verdict == Pending && dec.Reason == "" {
		dec.Reason = "waiting for a person to approve " + d.Release.Service + " " + d.Release.Version
	}
	return dec, nil
}
