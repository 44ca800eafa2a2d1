package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
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
	dec.By, dec.Reason = printable(dec.By, 200), printable(dec.Reason, 1000)
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
	return fmt.Errorf("unrecognised approval %q: want \"approved by NAME\", \"rejected by NAME: REASON\" or \"pending\"", redact.Clip(strings.TrimSpace(text), 200))
}

// printable removes control characters from s, which came from outside
// (an approval file), and cuts it to n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	return redact.Clip(s, n)
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
		return redact.Error(fmt.Errorf("approval could not be read: %w", err))
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
	// serves every release, as in ".deploy/approvals/{service}/{version}".
	// Two placeholders must be separated by a path separator, and a value
	// with a separator, "." or ".." is refused (see PathFor).
	Path string
}

var _ Approver = ApprovalFile{}

// PathFor returns the file that holds the decision on d. A placeholder
// whose value is empty, "." or "..", or holds a path separator or a control
// character is refused with an error wrapping deploy.ErrInvalid: a version
// such as "../approvals/v1" must not lead to another release's approval.
func (f ApprovalFile) PathFor(d *deploy.Deployment) (string, error) {
	if err := f.checkTemplate(); err != nil {
		return "", err
	}
	var args []string
	for _, p := range []struct{ name, value string }{
		{"{id}", d.ID}, {"{service}", d.Release.Service}, {"{version}", d.Release.Version}, {"{environment}", d.Release.Environment},
	} {
		if !strings.Contains(f.Path, p.name) {
			continue
		}
		if err := pathSegment(p.value); err != nil {
			return "", fmt.Errorf("%w: gate.ApprovalFile: %s %q %v", deploy.ErrInvalid, p.name, p.value, err)
		}
		args = append(args, p.name, p.value)
	}
	return strings.NewReplacer(args...).Replace(f.Path), nil
}

// placeholder finds the placeholders of a Path and what separates them.
var placeholder = regexp.MustCompile(`\{(?:id|service|version|environment)\}`)

// checkTemplate refuses two placeholders separated by nothing but
// characters a release field may hold ("{service}-{version}"): service
// "checkout-v2" with version "x" and service "checkout" with version
// "v2-x" would name one file, so one release could use another's
// approval. Separate them with a path separator.
func (f ApprovalFile) checkTemplate() error {
	locs := placeholder.FindAllStringIndex(f.Path, -1)
	for i := 1; i < len(locs); i++ {
		between := f.Path[locs[i-1][1]:locs[i][0]]
		if !strings.ContainsAny(between, `/\`) && !strings.ContainsRune(between, filepath.Separator) {
			return fmt.Errorf("%w: gate.ApprovalFile.Path %q: %s and %s are not separated by a path separator, so two releases could name one file",
				deploy.ErrInvalid, f.Path, f.Path[locs[i-1][0]:locs[i-1][1]], f.Path[locs[i][0]:locs[i][1]])
		}
	}
	return nil
}

// pathSegment refuses a value that would not stay one file name.
func pathSegment(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case v == "." || v == "..":
		return errors.New("is a relative path")
	case strings.ContainsAny(v, `/\`) || strings.ContainsRune(v, filepath.Separator):
		return errors.New("holds a path separator")
	case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return errors.New("holds a control character")
	}
	return nil
}

// Approval reads the decision from the file.
func (f ApprovalFile) Approval(ctx context.Context, d *deploy.Deployment) (Decision, error) {
	if f.Path == "" {
		return Decision{}, fmt.Errorf("%w: gate.ApprovalFile: Path is empty", deploy.ErrInvalid)
	}
	path, err := f.PathFor(d)
	if err != nil {
		return Decision{}, err
	}
	b, err := readDecision(path)
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

// maxDecision bounds how much of an approval file is read.
const maxDecision = 64 << 10

func readDecision(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, maxDecision))
}

// For names what a [Manual] decision is for: one release, and optionally
// one step of it. A decision applies only to a release it names, so one
// Manual shared by many releases cannot let an approval of one pass another.
type For struct {
	// ID is the release's id (Deployment.ID). Set it, or Service and
	// Version.
	ID string
	// Service and Version name the release when ID is empty; set, they
	// must match too.
	Service, Version string
	// Environment, when set, must match the release's environment.
	Environment string
	// Stage, when set, limits the decision to that stage.
	Stage string
	// Step, when positive, limits the decision to the Step-th step (1 for
	// the first) of the stage, as deploy.Deployment.Step+1 counts it; 0
	// means the release's gate and every step.
	Step int
}

// String names the release and step: "checkout-v2-1", "checkout v2 in
// production, stage production step 2".
func (f For) String() string {
	var parts []string
	if f.ID != "" {
		parts = append(parts, f.ID)
	}
	if f.Service != "" || f.Version != "" {
		parts = append(parts, strings.TrimSpace(f.Service+" "+f.Version))
	}
	s := strings.Join(parts, " ")
	if f.Environment != "" {
		s += " in " + f.Environment
	}
	if f.Stage != "" {
		s += ", stage " + f.Stage
	}
	if f.Step > 0 {
		s += fmt.Sprintf(", step %d", f.Step)
	}
	return s
}

func (f For) valid() error {
	if f.ID == "" && (f.Service == "" || f.Version == "") {
		return fmt.Errorf("%w: gate.For %+v names no release: set ID, or Service and Version", deploy.ErrInvalid, f)
	}
	if f.Step < 0 {
		return fmt.Errorf("%w: gate.For.Step %d is negative", deploy.ErrInvalid, f.Step)
	}
	return nil
}

// matches reports whether f names d, and how specifically: a step-bound
// decision outranks a release-wide one.
func (f For) matches(d *deploy.Deployment) (bool, int) {
	switch {
	case f.ID != "" && f.ID != d.ID,
		f.Service != "" && f.Service != d.Release.Service,
		f.Version != "" && f.Version != d.Release.Version,
		f.Environment != "" && f.Environment != d.Release.Environment,
		f.Stage != "" && f.Stage != d.Stage.Name,
		f.Step > 0 && (f.Step != d.Step+1 || d.Phase != deploy.PhaseDeploy):
		// A step-bound decision is for that step's approval, never for a
		// preflight gate (whose Deployment is at step 0 too).
		return false, 0
	}
	rank := 0
	if f.Stage != "" {
		rank++
	}
	if f.Step > 0 {
		rank += 2
	}
	return true, rank
}

// Manual is an [Approver] for programs: a chat command or a web handler calls
// Approve or Reject for a release, and the gate sees the decision at its
// next check. A decision says which release, and optionally which step, it
// is for ([For]); a release no decision names is pending. A Manual is safe
// for concurrent use and may be shared by many releases and runners in one
// process.
//
// A decision for a whole release holds for its gate and every step until
// Reset; one For a step holds for that step only, and outranks the
// release's.
type Manual struct {
	mu  sync.Mutex
	dec []bound
}

type bound struct {
	f   For
	dec Decision
}

var _ Approver = (*Manual)(nil)

// Approve records an approval by by of what f names. It returns an error
// wrapping deploy.ErrInvalid when f names no release.
func (m *Manual) Approve(f For, by string) error {
	return m.set(f, Decision{Verdict: Approved, By: by})
}

// Reject records a rejection by by, for reason, of what f names.
func (m *Manual) Reject(f For, by, reason string) error {
	return m.set(f, Decision{Verdict: Rejected, By: by, Reason: reason})
}

// Reset forgets the decision on exactly f, so that it is pending again.
func (m *Manual) Reset(f For) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dec = slices.DeleteFunc(m.dec, func(b bound) bool { return b.f == f })
}

func (m *Manual) set(f For, d Decision) error {
	if err := f.valid(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.dec {
		if m.dec[i].f == f {
			m.dec[i].dec = d
			return nil
		}
	}
	m.dec = append(m.dec, bound{f, d})
	return nil
}

// Approval returns the most specific decision that names d's release and
// step, or pending.
func (m *Manual) Approval(ctx context.Context, d *deploy.Deployment) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dec, best := Decision{Verdict: Pending}, -1
	for _, b := range m.dec {
		if ok, rank := b.f.matches(d); ok && rank > best {
			dec, best = b.dec, rank
		}
	}
	if dec.Verdict == "" {
		dec.Verdict = Pending
	}
	if dec.Verdict == Pending && dec.Reason == "" {
		dec.Reason = "waiting for a person to approve " + d.Release.Service + " " + d.Release.Version + " (" + d.ID + ")"
	}
	return dec, nil
}
