package deploy

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// PlanDoc is a dry run: what a release would do, without touching anything.
type PlanDoc struct {
	Release   Release
	Strategy  string
	Stages    []PlanStage
	Gates     []string
	Monitors  []string
	Notifiers []string
	// Conditions are the rollback policy's trigger conditions.
	Conditions []string
	// Procedure is the rollback procedure: conditions, steps, follow-ups.
	Procedure rollback.Plan
	Schedule  monitor.Schedule
	Interval  time.Duration
	Waivers   map[Pitfall]string
	// Problems are the pitfalls and errors Run would refuse the release for.
	Problems []string
	// Power is the power check of the policy's sequential triggers at the
	// traffic declared with WithTraffic, per stage: what each step can
	// detect. Empty without declared traffic (preflight then checks with
	// the traffic its baseline measures).
	Power []rollback.Power
	// Analyses are the background and promotion analyses ("background
	// success-rate from step 1 of each stage"); inline ones are in the steps.
	Analyses []string
}

// PlanStage is one stage of a PlanDoc.
type PlanStage struct {
	Name        string
	Environment string
	Steps       []PlanStep
}

// PlanStep is one step of a PlanDoc.
type PlanStep struct {
	Name     string
	Exposure float64
	Bake     time.Duration
	Approval bool
	// Approvers may approve the step (anyone when empty).
	Approvers []string
	// Analysis names the step's inline analysis, if any.
	Analysis string
	// Pause is the step's pause, if any.
	Pause *Pause
}

// Plan returns what Run would do for rel, as data and Markdown, without
// applying anything or writing state. A release Run would refuse still gets
// a plan, with the reasons in Problems; the error is for invalid input
// (an empty service or version, a plan with bad steps).
func (r *Runner) Plan(ctx context.Context, rel Release) (*PlanDoc, error) {
	rel, err := normalize(rel)
	if err != nil {
		return nil, err
	}
	d := &Deployment{Release: rel, Started: time.Now()}
	plans, err := r.plans(ctx, d)
	if err != nil {
		return nil, err
	}
	doc := &PlanDoc{Release: rel, Strategy: nameOf(r.strategy), Conditions: r.conditions,
		Schedule: r.cfg.schedule, Interval: r.cfg.interval, Waivers: r.cfg.waivers, Procedure: r.procedure(nil)}
	if a := r.cfg.background; a != nil {
		doc.Analyses = append(doc.Analyses, fmt.Sprintf("background %s from step %d of each stage", a.Name, r.cfg.startingAt))
	}
	if a := r.cfg.prePromo; a != nil {
		doc.Analyses = append(doc.Analyses, "pre-promotion "+a.Name)
	}
	if a := r.cfg.postPromo; a != nil {
		doc.Analyses = append(doc.Analyses, "post-promotion "+a.Name)
	}
	for i, st := range r.stages(rel) {
		ps := PlanStage{Name: st.Name, Environment: st.Environment}
		for _, s := range plans[i] {
			p := PlanStep{Name: s.Name, Exposure: s.Exposure, Bake: s.Bake, Approval: s.Approval, Approvers: s.Approvers, Pause: s.Pause}
			if s.Analysis != nil {
				p.Analysis = s.Analysis.Name
			}
			ps.Steps = append(ps.Steps, p)
		}
		doc.Stages = append(doc.Stages, ps)
	}
	rec := &state.Record{Release: rel}
	for _, g := range r.gates(rec) {
		doc.Gates = append(doc.Gates, nameOf(g))
	}
	for _, m := range r.cfg.monitors {
		doc.Monitors = append(doc.Monitors, nameOf(m))
	}
	for _, n := range r.cfg.notifiers {
		doc.Notifiers = append(doc.Notifiers, nameOf(n))
	}
	_, errs := r.guard(rel)
	for _, err := range errs {
		doc.Problems = append(doc.Problems, err.Error())
	}
	if r.cfg.traffic != nil {
		doc.Power = r.powerOf(*r.cfg.traffic, plans)
		doc.Problems = append(doc.Problems, r.powerProblems(doc.Power)...)
	}
	return doc, nil
}

// Markdown renders the plan, with the rollback procedure in the checklist
// document's format.
func (p *PlanDoc) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Deployment plan: %s %s to %s\n\n", p.Release.Service, p.Release.Version, p.Release.Environment)
	fmt.Fprintf(&b, "- Strategy: %s\n", p.Strategy)
	fmt.Fprintf(&b, "- Gates: %s\n", listOr(p.Gates))
	if len(p.Monitors) > 0 {
		fmt.Fprintf(&b, "- Monitors: %s (every %v while a step bakes)\n", listOr(p.Monitors), p.Interval)
	} else {
		b.WriteString("- Monitors: none\n")
	}
	fmt.Fprintf(&b, "- Notifiers: %s\n", listOr(p.Notifiers))
	for pf, reason := range p.Waivers {
		fmt.Fprintf(&b, "- Waived pitfall %s: %s\n", pf, reason)
	}
	if len(p.Analyses) > 0 {
		fmt.Fprintf(&b, "- Analyses: %s\n", strings.Join(p.Analyses, "; "))
	}
	for _, st := range p.Stages {
		holds := slices.ContainsFunc(st.Steps, func(s PlanStep) bool { return s.Analysis != "" || s.Pause != nil })
		if holds {
			fmt.Fprintf(&b, "\n### Stage %s (%s)\n| # | Step | Exposure | Bake | Approval | Analysis | Pause |\n|---|---|---|---|---|---|---|\n", st.Name, st.Environment)
		} else {
			fmt.Fprintf(&b, "\n### Stage %s (%s)\n| # | Step | Exposure | Bake | Approval |\n|---|---|---|---|---|\n", st.Name, st.Environment)
		}
		for i, s := range st.Steps {
			appr := ""
			if s.Approval {
				appr = "yes"
				if len(s.Approvers) > 0 {
					appr = "by " + strings.Join(s.Approvers, ", ")
				}
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %v | %s |", i+1, s.Name, percent(s.Exposure), s.Bake, appr)
			if holds {
				pause := ""
				switch {
				case s.Pause != nil && s.Pause.Duration > 0:
					pause = s.Pause.Duration.String()
				case s.Pause != nil:
					pause = "until promoted"
				}
				fmt.Fprintf(&b, " %s | %s |", s.Analysis, pause)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n### Post-deployment watch\n")
	if len(p.Schedule.Windows) == 0 {
		b.WriteString("- post-deployment checks only\n")
	}
	for _, w := range p.Schedule.Windows {
		fmt.Fprintf(&b, "- %s: every %v for %v\n", capitalize(w.Name), w.Interval, w.Duration)
	}
	powerMarkdown(&b, p.Power)
	b.WriteString("\n")
	b.WriteString(p.Procedure.Markdown())
	if len(p.Problems) > 0 {
		b.WriteString("\n### Problems\n")
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "- %s\n", pr)
		}
	}
	return b.String()
}

// procedure returns the rollback procedure, with the outcome of each step
// when rec has run a rollback.
func (r *Runner) procedure(rec *state.Record) rollback.Plan {
	name := nameOf(r.strategy)
	how := "return every user to the previous version"
	if d, ok := r.strategy.(interface{ DescribeRollback() string }); ok {
		how = d.DescribeRollback()
	}
	if !hasRollbackPath(r.strategy) {
		how = "none: the strategy has no way back (pitfall " + string(NoRollbackPlan) + "); the new version stays"
	}
	steps := []string{name + " rollback: " + how}
	for _, s := range r.cfg.rollbackSteps {
		steps = append(steps, s.Name)
	}
	steps = append(steps, "Verify rollback: observe the monitors and judge against the baseline")
	pl := rollback.NewPlan(nil, steps...)
	pl.Conditions = r.conditions
	if rec == nil {
		return pl
	}
	mark := func(i int, e state.Entry) {
		pl.Steps[i].At = e.At
		if e.Outcome == state.OutcomeDone || e.Outcome == state.OutcomeVerified {
			pl.Steps[i].Done, pl.Steps[i].Err = true, ""
		} else {
			pl.Steps[i].Err = e.Detail
			if e.Outcome == state.OutcomeUnverified {
				pl.Steps[i].Err = "not verified: " + e.Detail
			}
		}
	}
	for _, e := range rec.RollbackSteps[min(rec.RollbackFrom, len(rec.RollbackSteps)):] {
		switch e.Kind {
		case state.EntryRollback:
			mark(0, e)
		case state.EntryVerify:
			mark(len(pl.Steps)-1, e)
		case state.EntryStep:
			for i, s := range r.cfg.rollbackSteps {
				if s.Name == e.Name {
					mark(i+1, e)
				}
			}
		}
	}
	return pl
}

func listOr(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// plans returns the strategy's validated plan for every stage. Each stage is
// planned with its own exposure: d's for d's stage, 1 for the stages
// completed before it, 0 for those after it (and for all of them when d
// names no stage), so that a strategy that plans from the exposure
// (BlueGreen's side) plans a later stage as not yet deployed.
func (r *Runner) plans(ctx context.Context, d *Deployment) ([][]Step, error) {
	stages := r.stages(d.Release)
	out := make([][]Step, len(stages))
	if d.Memo == nil {
		d.Memo = map[string]string{}
	}
	orig := *d
	defer func() { d.Stage, d.Exposure, d.Step = orig.Stage, orig.Exposure, orig.Step }()
	cur, exposure, step := d.Stage.Name, d.Exposure, d.Step
	before := cur != "" && slices.ContainsFunc(stages, func(s Stage) bool { return s.Name == cur })
	for i, st := range stages {
		d.Stage = st
		switch {
		case st.Name == cur:
			d.Exposure, d.Step = exposure, step
			before = false
		case before:
			d.Exposure, d.Step = 1, 0
		default:
			d.Exposure, d.Step = 0, 0
		}
		// Plan gets its own copy of the deployment and of the memo: one
		// that outlives its timeout writes into nothing the runner reads.
		dc := *d
		dc.Memo = maps.Clone(d.Memo)
		steps, err := bounded(ctx, "strategy "+nameOf(r.strategy)+": Plan", r.cfg.timeouts.Plan, func(ctx context.Context) ([]Step, error) {
			return r.strategy.Plan(ctx, &dc)
		})
		if err == nil {
			maps.Copy(d.Memo, dc.Memo) // what Plan remembered, kept
		}
		if err != nil {
			return nil, fmt.Errorf("%w: plan for stage %q: %v", ErrInvalid, st.Name, err)
		}
		if err := validateSteps(st.Name, steps, r.cfg.timeouts.Observe); err != nil {
			return nil, err
		}
		steps, err = r.applyRules(st.Name, steps)
		if err != nil {
			return nil, err
		}
		if r.cfg.background != nil && r.cfg.startingAt >= len(steps) {
			// The run would never start in this stage: refuse, as Argo
			// refuses a startingStep beyond its steps.
			return nil, fmt.Errorf("%w: WithBackgroundAnalysis startingStep %d: stage %q has %d step(s), 0 to %d", ErrInvalid, r.cfg.startingAt, st.Name, len(steps), len(steps)-1)
		}
		out[i] = steps
	}
	return out, nil
}

// applyRules adds the WithStepRules of stage to its steps (a copy), and
// refuses a rule that names no step of any stage's plan.
func (r *Runner) applyRules(stage string, steps []Step) ([]Step, error) {
	if len(r.cfg.stepRules) == 0 {
		return steps, nil
	}
	steps = slices.Clone(steps)
	for i, sr := range r.cfg.stepRules {
		if sr.Stage != "" && sr.Stage != stage {
			continue
		}
		j := slices.IndexFunc(steps, func(s Step) bool { return s.Name == sr.Step })
		if j < 0 {
			if sr.Stage == "" && len(r.cfg.stages) > 1 {
				continue // another stage's step, perhaps
			}
			return nil, fmt.Errorf("%w: WithStepRules[%d]: stage %q has no step %q", ErrInvalid, i, stage, sr.Step)
		}
		s := &steps[j]
		if s.Analysis == nil {
			s.Analysis = sr.Analysis
		}
		if s.Pause == nil {
			s.Pause = sr.Pause
		}
		if sr.Approval {
			s.Approval = true
			if len(s.Approvers) == 0 {
				s.Approvers = sr.Approvers
			}
		}
	}
	return steps, nil
}

func validateSteps(stage string, steps []Step, observe time.Duration) error {
	if len(steps) == 0 {
		return fmt.Errorf("%w: stage %q: the plan has no steps", ErrInvalid, stage)
	}
	names := make(map[string]bool, len(steps))
	for i, s := range steps {
		where := func() string { return fmt.Sprintf("stage %q step %d (%q)", stage, i, s.Name) }
		switch {
		case s.Name == "":
			return fmt.Errorf("%w: stage %q step %d: Name is empty", ErrInvalid, stage, i)
		case names[s.Name]:
			return fmt.Errorf("%w: %s: Name is repeated", ErrInvalid, where())
		case math.IsNaN(s.Exposure) || s.Exposure < 0 || s.Exposure > 1:
			return fmt.Errorf("%w: %s: Exposure %v is outside [0, 1]", ErrInvalid, where(), s.Exposure)
		case s.Bake < 0:
			return fmt.Errorf("%w: %s: Bake %v is negative", ErrInvalid, where(), s.Bake)
		case s.Bake > maxDuration:
			return fmt.Errorf("%w: %s: Bake %v is longer than %v", ErrInvalid, where(), s.Bake, maxDuration)
		case s.Apply == nil:
			return fmt.Errorf("%w: %s: Apply is nil", ErrInvalid, where())
		case s.Pause != nil && (s.Pause.Duration < 0 || s.Pause.Duration > maxDuration):
			return fmt.Errorf("%w: %s: Pause.Duration %v is outside [0, %v]", ErrInvalid, where(), s.Pause.Duration, maxDuration)
		case len(s.Approvers) > 0 && !s.Approval:
			return fmt.Errorf("%w: %s: Approvers are named but Approval is not set", ErrInvalid, where())
		}
		if s.Analysis != nil {
			if err := checkAnalysis(where(), s.Analysis, observe); err != nil {
				return err
			}
		}
		names[s.Name] = true
	}
	last := steps[len(steps)-1]
	if last.Exposure < 1 && !last.Partial {
		return fmt.Errorf("%w: stage %q: the plan ends at exposure %v, not 1: a release that is meant to stop short says so with Partial on its last step (%q)", ErrInvalid, stage, last.Exposure, last.Name)
	}
	return nil
}
