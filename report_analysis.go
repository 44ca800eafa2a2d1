package deploy

import (
	"fmt"
	"strings"
	"time"

	"github.com/deploykit/deploy/state"
)

// analysisMarkdown renders what the release waits for, the decisions
// people took, and each analysis run with its metrics and measurements.
func (rep *Report) analysisMarkdown() string {
	var b strings.Builder
	if w := rep.Waiting; w != nil {
		b.WriteString("\n### Waiting\n")
		fmt.Fprintf(&b, "- For: %s at step %d (%s) of %s, since +%v", w.Kind, w.Step, mdText(w.StepName), mdText(w.Stage), w.Since.Sub(rep.Started).Round(time.Second))
		if !w.Until.IsZero() {
			fmt.Fprintf(&b, ", until +%v", w.Until.Sub(rep.Started).Round(time.Second))
		}
		b.WriteString("\n")
		if w.Reason != "" {
			fmt.Fprintf(&b, "- Why: %s\n", mdText(w.Reason))
		}
		if len(w.Approvers) > 0 {
			fmt.Fprintf(&b, "- Approvers: %s\n", mdText(strings.Join(w.Approvers, ", ")))
		}
	}
	if len(rep.Decisions) > 0 {
		b.WriteString("\n### Decisions\n| Time | Decision | Step | By | Reason | Outcome |\n|---|---|---|---|---|---|\n")
		for _, d := range rep.Decisions {
			kind := string(d.Kind)
			if d.Full {
				kind += " (full)"
			}
			outcome := d.Outcome
			if d.Pending() {
				outcome = "pending"
			}
			fmt.Fprintf(&b, "| +%v | %s | %s/%d | %s | %s | %s |\n", d.At.Sub(rep.Started).Round(time.Second), kind, mdText(d.Stage), d.Step, mdText(d.By), mdText(d.Reason), mdText(outcome))
		}
	}
	if len(rep.Analyses) > 0 {
		b.WriteString("\n### Analysis\n")
		for _, run := range rep.Analyses {
			end := "running"
			if !run.End.IsZero() {
				end = fmt.Sprintf("+%v", run.End.Sub(rep.Started).Round(time.Second))
			}
			phase := string(run.Phase)
			if run.Accepted {
				phase += ", promoted past"
			}
			fmt.Fprintf(&b, "\n#### %s (%s, step %s/%s", mdText(run.Name), run.Kind, mdText(run.Stage), mdText(run.StepName))
			if run.Attempt > 0 {
				fmt.Fprintf(&b, ", attempt %d", run.Attempt+1)
			}
			fmt.Fprintf(&b, "): %s\n- From +%v to %s", phase, run.Start.Sub(rep.Started).Round(time.Second), end)
			if run.Reason != "" {
				fmt.Fprintf(&b, ": %s", mdText(run.Reason))
			}
			b.WriteString("\n\n| Metric | Result | Measured | Successful | Failed | Inconclusive | Errors | Last values |\n|---|---|---|---|---|---|---|---|\n")
			for _, m := range run.Metrics {
				name := m.Name
				if m.DryRun {
					name += " (dry run)"
				}
				var vals []string
				for _, x := range m.Measurements {
					v := "error"
					if x.Value != nil {
						v = withUnit(*x.Value, m.Unit)
					}
					vals = append(vals, fmt.Sprintf("+%v %s (%s)", x.At.Sub(rep.Started).Round(time.Second), v, x.Phase))
				}
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %s |\n", mdText(name), m.Phase, m.Count, m.Successful, m.Failed, m.Inconclusive, m.Errors, mdText(strings.Join(vals, "; ")))
			}
		}
	}
	return b.String()
}

// analysisState copies the record's waits, decisions and runs into rep.
func analysisState(rep *Report, rec *state.Record) {
	rep.Waiting = rec.Waiting.Clone()
	rep.Decisions = append([]state.Decision(nil), rec.Decisions...)
	if len(rec.Analyses) > 0 {
		c := rec.Clone() // a deep copy of the runs
		rep.Analyses = c.Analyses
	}
	rep.Attempt = rec.Attempt
}
