package rollback

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// postRollback are the follow-ups of the deployment checklist's rollback
// procedure, in [NewPlan]'s plans.
var postRollback = []string{
	"Document what went wrong",
	"Investigate root cause",
	"Plan fix before re-attempting",
}

// Plan is the documented rollback procedure of a release, in the format of
// the deployment checklist's "Rollback Plan": the conditions that trigger it,
// the steps that carry it out and the follow-ups after it.
//
// A Plan is not safe for concurrent use: Execute records each step's outcome
// in Steps.
type Plan struct {
	// Conditions are the trigger conditions, usually [Policy.Conditions].
	Conditions []string
	// Steps run in order.
	Steps []PlanStep
	// PostRollback are the follow-ups once the release is rolled back.
	PostRollback []string
}

// PlanStep is one step of a rollback: executable when Run is set, else
// documented only (a step someone else carries out, such as the strategy's
// rollback run by the runner, or a manual one).
type PlanStep struct {
	// Name says what the step does, as a person reads it in the procedure.
	Name string
	// Run carries the step out; nil means the step is documented only and
	// Execute skips it. Run must honour ctx.
	Run func(ctx context.Context) error
	// Done reports whether Execute ran the step and it succeeded.
	Done bool
	// At is when Execute finished the step; zero if it never ran.
	At time.Time
	// Err is the step's error, empty if it succeeded or never ran.
	Err string
}

// NewPlan returns the rollback procedure for policy p: its conditions, one
// documented step per name in strategySteps (the strategy's rollback, e.g.
// "Switch traffic back to blue"), and the checklist's post-rollback
// follow-ups. Add executable or extra steps with [Plan.Add]. A nil p gives
// no conditions.
func NewPlan(p *Policy, strategySteps ...string) Plan {
	var pl Plan
	if p != nil {
		pl.Conditions = p.Conditions()
	}
	for _, s := range strategySteps {
		pl.Steps = append(pl.Steps, PlanStep{Name: s})
	}
	pl.PostRollback = append([]string(nil), postRollback...)
	return pl
}

// Add appends a step named name that run carries out; a nil run documents
// the step only.
func (pl *Plan) Add(name string, run func(ctx context.Context) error) {
	pl.Steps = append(pl.Steps, PlanStep{Name: name, Run: run})
}

// Execute runs the executable steps in order, skipping those already Done
// (so a plan interrupted by a crash can be executed again) and the
// documented-only ones, and records each outcome in Done, At and Err. It stops at the first
// step that fails or when ctx is done, and returns an error naming the step;
// the error wraps the step's error.
//
// A rollback must survive the cancellation of what triggered it: call
// Execute with context.WithTimeout(context.WithoutCancel(ctx), d).
func (pl *Plan) Execute(ctx context.Context) error {
	for i := range pl.Steps {
		s := &pl.Steps[i]
		if s.Run == nil || s.Done {
			continue
		}
		err := ctx.Err()
		if err == nil {
			err = s.Run(ctx)
		}
		s.At = time.Now()
		if err != nil {
			s.Err = err.Error()
			return fmt.Errorf("rollback: step %d (%s): %w", i+1, s.Name, err)
		}
		s.Done, s.Err = true, ""
	}
	return nil
}

// Pending returns the names of the steps not Done: documented-only steps
// and those that failed or never ran.
func (pl *Plan) Pending() []string {
	var names []string
	for _, s := range pl.Steps {
		if !s.Done {
			names = append(names, s.Name)
		}
	}
	return names
}

// Markdown renders the procedure under "## Rollback Procedure", with
// "### Trigger Conditions", numbered "### Rollback Steps" and
// "### Post-Rollback" as in the deployment checklist. A step that ran shows
// its outcome and time (UTC, RFC 3339); the others show their name only.
func (pl *Plan) Markdown() string {
	var b strings.Builder
	b.WriteString("## Rollback Procedure\n\n### Trigger Conditions\n")
	for _, c := range pl.Conditions {
		b.WriteString("- " + c + "\n")
	}
	b.WriteString("\n### Rollback Steps\n")
	for i, s := range pl.Steps {
		fmt.Fprintf(&b, "%d. %s", i+1, s.Name)
		switch {
		case s.Done:
			fmt.Fprintf(&b, " — done %s", s.At.UTC().Format(time.RFC3339))
		case s.Err != "":
			fmt.Fprintf(&b, " — failed %s: %s", s.At.UTC().Format(time.RFC3339), s.Err)
		}
		b.WriteByte('\n')
	}
	b.WriteString("\n### Post-Rollback\n")
	for _, f := range pl.PostRollback {
		b.WriteString("- " + f + "\n")
	}
	return b.String()
}
