package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// Report is the outcome of a release: what happened, with evidence. It is
// built from the release's state record, so a report of a finished release
// can be rebuilt at any time with Runner.Report.
type Report struct {
	ID       string
	Release  Release
	Strategy string
	Status   Status
	// Phase is where the release is, or ended.
	Phase    Phase
	Started  time.Time
	Finished time.Time
	// Exposure is the share of users on the new version at the end.
	Exposure  float64
	Gates     []state.Gate
	Baseline  map[string]state.Measurement
	Last      map[string]state.Measurement
	Windows   []state.Window
	Timeline  []state.Entry
	Checklist []ChecklistLine
	// Trigger is what made the release roll back or stop, if anything.
	Trigger       *state.Trigger
	RollbackSteps []state.Entry
	// Conditions are the rollback policy's trigger conditions.
	Conditions []string
	// Procedure is the rollback procedure with the outcome of each step
	// that ran.
	Procedure rollback.Plan
	Waivers   []state.Waiver
	FollowUps []string
	Lessons   []string
	// Error is the error that ended the release, if any.
	Error string
	// Pending counts notifications not delivered yet: they stay in the
	// outbox, and Resume or Reconcile keep delivering them.
	Pending int
	// Undelivered counts notifications given up because they expired
	// (ExpireAfter): they were never delivered.
	Undelivered int
	// Notifications says, per notifier, what was not delivered, for people:
	// "NOT delivered to slack: 3 event(s) pending, last error: …".
	Notifications []string
	// Waiting is what the release waits for (a person's decision), if anything.
	Waiting *state.Wait
	// Decisions are the decisions people took, with who, why and what came of them.
	Decisions []state.Decision
	// Analyses are the analysis runs, with their metrics and last measurements.
	Analyses []state.AnalysisRun
	// Attempt counts the Retries after an abort (0 for the first attempt).
	Attempt int
}

// Duration is how long the release took (so far).
func (rep *Report) Duration() time.Duration {
	end := rep.Finished
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(rep.Started)
}

// Report rebuilds the report of release id from its state record.
func (r *Runner) Report(ctx context.Context, id string) (*Report, error) {
	store, err := r.store()
	if err != nil {
		return nil, err
	}
	rec, err := store.Load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return r.report(rec), nil
}

func (r *Runner) report(rec *state.Record) *Report {
	rep := &Report{
		ID: rec.ID, Release: rec.Release, Strategy: rec.Strategy, Status: rec.Status, Phase: rec.Phase,
		Started: rec.Created, Finished: rec.Finished, Exposure: rec.Exposure,
		Gates: rec.Gates, Baseline: rec.Baseline, Last: rec.Last, Windows: rec.Windows, Timeline: slices.Clone(rec.Timeline),
		Trigger: rec.Trigger, RollbackSteps: slices.Clone(rec.RollbackSteps), Waivers: rec.Waivers, Error: rec.Error,
		Conditions: r.conditions, Pending: len(rec.Outbox), Undelivered: len(rec.Undelivered), Procedure: r.procedure(rec),
	}
	rep.Notifications = r.undelivered(rec)
	analysisState(rep, rec)
	for _, sec := range Checklist() {
		for _, it := range sec.Items {
			t := rec.Checklist[string(it)]
			rep.Checklist = append(rep.Checklist, ChecklistLine{Section: sec.Title, Item: it, Done: t.Done, Evidence: t.Evidence})
		}
	}
	rep.FollowUps, rep.Lessons = followUps(rec)
	if len(rep.Notifications) > 0 && rec.Status.Final() {
		rep.FollowUps = append(rep.FollowUps, "Tell stakeholders by hand what the notifiers could not: "+strings.Join(rep.Notifications, "; "))
	}
	return rep
}

// undelivered says, per notifier, which events are pending or expired.
func (r *Runner) undelivered(rec *state.Record) []string {
	if len(rec.Outbox) == 0 && len(rec.Undelivered) == 0 {
		return nil
	}
	type tally struct {
		pending, expired int
		last             string
		refused          bool
	}
	by := map[int]*tally{}
	add := func(m state.Message, expired bool) {
		t := by[m.Notifier]
		if t == nil {
			t = &tally{}
			by[m.Notifier] = t
		}
		if expired {
			t.expired++
		} else {
			t.pending++
		}
		if m.LastError != "" {
			t.last, t.refused = m.LastError, m.Refused
		}
	}
	for _, m := range rec.Outbox {
		add(m, false)
	}
	for _, m := range rec.Undelivered {
		add(m, true)
	}
	var out []string
	for _, i := range slices.Sorted(maps.Keys(by)) {
		t := by[i]
		name := fmt.Sprintf("notifier %d", i)
		if i >= 0 && i < len(r.cfg.notifiers) {
			name = nameOf(r.cfg.notifiers[i])
		}
		var parts []string
		if t.expired > 0 {
			parts = append(parts, fmt.Sprintf("%d event(s) expired", t.expired))
		}
		if t.pending > 0 {
			parts = append(parts, fmt.Sprintf("%d event(s) pending", t.pending))
		}
		line := "NOT delivered to " + name + ": " + strings.Join(parts, ", ")
		if t.last != "" {
			if t.refused {
				line += ", refused: " + t.last
			} else {
				line += ", last error: " + t.last
			}
		}
		out = append(out, line)
	}
	return out
}

// followUps derives follow-up items and lessons from what happened.
func followUps(rec *state.Record) (follow, lessons []string) {
	for _, w := range rec.Waivers {
		follow = append(follow, fmt.Sprintf("Revisit waived pitfall %s (reason given: %s)", w.Pitfall, w.Reason))
		lessons = append(lessons, fmt.Sprintf("Released with pitfall %s waived: %s", w.Pitfall, w.Reason))
	}
	paused := 0
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryVerdict && e.Outcome == state.OutcomePaused {
			paused++
		}
	}
	if paused > 0 || rec.Counters.Inconclusive > 0 {
		follow = append(follow, fmt.Sprintf("Check metric coverage: %d inconclusive observation(s) (no data or too few samples)", rec.Counters.Inconclusive))
		lessons = append(lessons, "Some observations were inconclusive; the release paused rather than promote on missing data")
	}
	if rec.Counters.ConsecutiveErrors > 0 {
		follow = append(follow, "Fix the metric source that failed to measure")
	}
	for _, e := range rec.RollbackSteps {
		if e.Kind == state.EntryVerify && e.Outcome == state.OutcomeUnverified {
			follow = append(follow, "Check by hand that the rollback restored health; the monitors could not show it ("+e.Detail+")")
		}
	}
	switch rec.Status {
	case RolledBack, Aborted, Failed:
		if rec.Trigger != nil && rec.Trigger.Kind != state.TriggerBlocked {
			follow = append(follow, "Document what went wrong: "+rec.Trigger.Reason, "Investigate root cause", "Plan fix before re-attempting")
			if !rec.RollbackStart.IsZero() {
				lessons = append(lessons, fmt.Sprintf("The rollback triggered on its own and restored the previous version in %v", rec.Finished.Sub(rec.Trigger.At).Round(time.Second)))
			}
		}
	case RollbackFailed:
		follow = append(follow, "URGENT: restore the previous version by hand: "+rec.Error, "Investigate why the rollback failed", "Investigate root cause")
		lessons = append(lessons, "The automatic rollback did not restore health")
	case Blocked:
		if rec.Trigger != nil {
			follow = append(follow, "Resolve the blocking check and re-run: "+rec.Trigger.Reason)
		}
		lessons = append(lessons, "The pre-deployment checks stopped the release before anything was deployed")
	case Succeeded:
		lessons = append(lessons, fmt.Sprintf("What went well: every step stayed within its thresholds over %d observations", rec.Observed))
		if len(rec.Baseline) == 0 {
			lessons = append(lessons, "What could improve: no baseline metrics were measured before the deploy")
		}
	}
	return follow, lessons
}

// Headline is a one-line summary of the outcome.
func (rep *Report) Headline() string {
	s := fmt.Sprintf("%s %s to %s: %s", rep.Release.Service, rep.Release.Version, rep.Release.Environment, rep.Status)
	if w := rep.Waiting; w != nil {
		s += fmt.Sprintf(", waiting for %s at step %s", w.Kind, w.StepName)
	}
	if rep.Trigger != nil && rep.Status != Succeeded {
		s += " — " + rep.Trigger.Reason
	}
	if rep.Error != "" && rep.Status == RollbackFailed {
		s += " — " + rep.Error
	}
	return s
}

// Markdown writes the summary report in the format of the checklist
// document: Completed, What Was Delivered, Key Artifacts, Deployment
// Details, the checklist with ticks, the timeline, the rollback trigger if
// any, Follow-up Items and Lessons Learned.
//
// Text that comes from the release, from gates, monitors, strategies or
// errors is escaped (see mdText): it can add no heading, list item, table
// row, link or HTML, shows no control character, and its URLs carry no
// credentials or query values.
func (rep *Report) Markdown() string {
	var b strings.Builder
	rel := rep.Release // escaped copies of the release's text
	rel.Service, rel.Version, rel.Environment = mdText(rel.Service), mdText(rel.Version), mdText(rel.Environment)
	rel.PreviousVersion, rel.Commit, rel.Description = mdText(rel.PreviousVersion), mdText(rel.Commit), mdText(rel.Description)
	title := rel.Description
	if title == "" {
		title = rel.Service + " " + rel.Version
	}
	if rep.Status == Succeeded {
		fmt.Fprintf(&b, "## Completed: %s\n\n", title)
	} else {
		fmt.Fprintf(&b, "## %s: %s\n\n", capitalize(string(rep.Status)), title)
	}
	b.WriteString("### What Was Delivered\n")
	switch rep.Status {
	case Succeeded:
		fmt.Fprintf(&b, "- %s %s released to %s at %s exposure\n", rel.Service, rel.Version, rel.Environment, percent(rep.Exposure))
	case RollbackFailed:
		fmt.Fprintf(&b, "- Unknown: the rollback of %s %s did not complete or did not restore health; the new version may still reach users until a person acts\n", rel.Service, rel.Version)
	case Failed:
		switch done := rep.completedStages(); {
		case rep.Exposure > 0:
			fmt.Fprintf(&b, "- %s %s stays at %s exposure: the release failed with no way back\n", rel.Service, rel.Version, percent(rep.Exposure))
		case len(done) > 0:
			fmt.Fprintf(&b, "- %s %s reached %s, and stays there: the release failed after it, with no way back\n", rel.Service, rel.Version, mdText(strings.Join(done, ", ")))
		default:
			fmt.Fprintf(&b, "- Nothing: %s %s failed before it reached users\n", rel.Service, rel.Version)
		}
	case Blocked:
		fmt.Fprintf(&b, "- Nothing: %s %s was blocked before anything was deployed\n", rel.Service, rel.Version)
	case Running:
		fmt.Fprintf(&b, "- In progress: %s %s at %s exposure", rel.Service, rel.Version, percent(rep.Exposure))
		if w := rep.Waiting; w != nil {
			fmt.Fprintf(&b, ", waiting for %s at step %s", w.Kind, mdText(w.StepName))
		}
		b.WriteString("\n")
	default: // rolled back, aborted
		fmt.Fprintf(&b, "- Nothing: %s %s was %s", rel.Service, rel.Version, rep.Status)
		done := rep.completedStages()
		if rel.PreviousVersion != "" {
			if len(done) > 0 && rep.Trigger != nil && rep.Trigger.Stage != "" {
				fmt.Fprintf(&b, "; %s serves %s again", rel.PreviousVersion, mdText(rep.Trigger.Stage))
			} else {
				fmt.Fprintf(&b, "; %s serves everyone", rel.PreviousVersion)
			}
		}
		if len(done) > 0 {
			verb := "keeps"
			if len(done) > 1 {
				verb = "keep"
			}
			fmt.Fprintf(&b, "; %s, completed before, %s %s", mdText(strings.Join(done, ", ")), verb, rel.Version)
		}
		b.WriteString("\n")
	}
	if rel.Description != "" {
		if rep.Status == Succeeded {
			fmt.Fprintf(&b, "- %s\n", rel.Description)
		} else {
			fmt.Fprintf(&b, "- Not delivered: %s\n", rel.Description)
		}
	}
	b.WriteString("\n### Key Artifacts\n")
	if len(rep.Release.Links) == 0 {
		b.WriteString("- (none given)\n")
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Release.Links)) {
		fmt.Fprintf(&b, "- %s: %s\n", capitalize(mdText(k)), mdLink(rep.Release.Links[k]))
	}
	b.WriteString("\n### Deployment Details\n")
	fmt.Fprintf(&b, "- Deployed: %s\n", rep.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Environment: %s\n", rel.Environment)
	vc := rel.Version
	if rel.Commit != "" {
		vc += " / " + rel.Commit
	}
	fmt.Fprintf(&b, "- Version/Commit: %s\n", vc)
	if rel.PreviousVersion != "" {
		fmt.Fprintf(&b, "- Previous version: %s\n", rel.PreviousVersion)
	}
	fmt.Fprintf(&b, "- Strategy: %s\n", mdText(rep.Strategy))
	fmt.Fprintf(&b, "- Duration: %v\n", rep.Duration().Round(time.Second))
	fmt.Fprintf(&b, "- Status: %s\n", rep.Status)
	for _, w := range rep.Waivers {
		fmt.Fprintf(&b, "- Waived pitfall %s: %s\n", mdText(string(w.Pitfall)), mdText(w.Reason))
	}
	section := ""
	for _, l := range rep.Checklist {
		if l.Section != section {
			section = l.Section
			fmt.Fprintf(&b, "\n### %s\n", section)
		}
		mark := " "
		if l.Done {
			mark = "x"
		}
		fmt.Fprintf(&b, "- [%s] %s", mark, l.Item)
		if l.Evidence != "" {
			fmt.Fprintf(&b, " — %s", mdText(l.Evidence))
		}
		b.WriteString("\n")
	}
	if len(rep.Windows) > 0 {
		b.WriteString("\n### Monitoring\n")
		for _, w := range rep.Windows {
			end := w.End
			if end.IsZero() {
				end = rep.Finished
			}
			fmt.Fprintf(&b, "- %s: %v, %d observations every %v\n", capitalize(mdText(w.Name)), end.Sub(w.Start).Round(time.Second), w.Observations, w.Interval)
		}
	}
	b.WriteString("\n### Timeline\n")
	b.WriteString("| Time | Phase | Event | Exposure | Detail |\n|---|---|---|---|---|\n")
	for _, e := range rep.Timeline {
		if e.Kind == state.EntryObservation && e.Name != "baseline" {
			continue
		}
		name := string(e.Kind)
		if e.Name != "" {
			name += " " + e.Name
		}
		detail := e.Detail
		if e.Outcome != state.OutcomeNone {
			detail = string(e.Outcome)
			if e.Detail != "" {
				detail += ": " + e.Detail
			}
		}
		fmt.Fprintf(&b, "| +%v | %s | %s | %s | %s |\n", e.At.Sub(rep.Started).Round(time.Second), mdText(string(e.Phase)), mdText(name), percent(e.Exposure), mdText(detail))
	}
	b.WriteString(rep.Charts())
	b.WriteString(rep.analysisMarkdown())
	if rep.Trigger != nil && rep.Trigger.Kind != state.TriggerBlocked {
		b.WriteString("\n### Rollback\n")
		fmt.Fprintf(&b, "- Trigger: %s (%s)\n", mdText(rep.Trigger.Reason), mdText(string(rep.Trigger.Kind)))
		if rep.Trigger.Metric != "" {
			fmt.Fprintf(&b, "- Metric: %s, observed %s, %s %s, threshold %s, %d samples\n", mdText(rep.Trigger.Metric),
				fnum(rep.Trigger.Observed), mdText(cmp.Or(rep.Trigger.Reference, "baseline")), fnum(rep.Trigger.Baseline), fnum(rep.Trigger.Threshold), rep.Trigger.Samples)
		}
		if rep.Trigger.Step != "" {
			fmt.Fprintf(&b, "- At step: %s/%s\n", mdText(rep.Trigger.Stage), mdText(rep.Trigger.Step))
		}
		b.WriteString("\n")
		b.WriteString(demote(rep.Procedure.Markdown()))
	} else if rep.Trigger != nil {
		fmt.Fprintf(&b, "\n### Blocked\n- %s\n", mdText(rep.Trigger.Reason))
	}
	if len(rep.Notifications) > 0 {
		b.WriteString("\n### Notifications\n")
		for _, n := range rep.Notifications {
			b.WriteString("- " + mdText(n) + "\n")
		}
	}
	b.WriteString("\n### Follow-up Items\n")
	if len(rep.FollowUps) == 0 {
		b.WriteString("- [ ] None\n")
	}
	for _, f := range rep.FollowUps {
		fmt.Fprintf(&b, "- [ ] %s\n", mdText(f))
	}
	b.WriteString("\n### Lessons Learned\n")
	for _, l := range rep.Lessons {
		fmt.Fprintf(&b, "- %s\n", mdText(l))
	}
	return b.String()
}

func fnum(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.4g", *p)
}

// WorkflowPhases are the phases of the delivery workflow this library's
// deploy phase belongs to, in order.
var WorkflowPhases = []string{"understand", "research", "scope", "design", "decompose", "implement", "validate", "deploy"}

// WorkflowState is the workflow-state document the surrounding delivery
// workflow reads.
type WorkflowState struct {
	CurrentPhase    string     `json:"currentPhase"`
	CompletedPhases []string   `json:"completedPhases"`
	CompletedAt     *time.Time `json:"completedAt,omitempty"`
	// Status is this release's status, for tools that want more than the phase.
	Status Status `json:"status"`
}

// WorkflowState returns the workflow state as JSON: on success currentPhase
// is "complete", "deploy" is among completedPhases and completedAt is the
// ISO time the release finished; otherwise currentPhase is "deploy".
func (rep *Report) WorkflowState() []byte {
	ws := WorkflowState{CurrentPhase: "deploy", CompletedPhases: WorkflowPhases[:len(WorkflowPhases)-1], Status: rep.Status}
	if rep.Status == Succeeded {
		t := rep.Finished.UTC()
		ws.CurrentPhase, ws.CompletedPhases, ws.CompletedAt = "complete", WorkflowPhases, &t
	}
	b, _ := json.MarshalIndent(ws, "", "  ")
	return b
}

// demote moves every heading of md one level down, so that a document made
// to stand alone ("## Rollback Procedure", "### Trigger Conditions") nests
// under the report's "###" sections.
func demote(md string) string {
	lines := strings.SplitAfter(md, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			lines[i] = "#" + l
		}
	}
	return strings.Join(lines, "")
}

// completedStages names the stages the release completed before the stage
// where it stopped (the trigger's), which keep the new version.
func (rep *Report) completedStages() []string {
	var done []string
	for _, e := range rep.Timeline {
		if e.Kind == state.EntryStage && e.Outcome == state.OutcomeComplete && (rep.Trigger == nil || e.Name != rep.Trigger.Stage) {
			done = append(done, e.Name)
		}
	}
	return done
}
