package deploy

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploykit/deploy/state"
)

// chart is one chart of a report: a line of values over labelled points,
// optionally a flat threshold line and marked points (the rollback).
type chart struct {
	title  string
	yTitle string
	labels []string
	values []float64
	// threshold, when set, is drawn as a second, flat line.
	threshold *float64
	// marked points are drawn as a bar reaching the top of the chart.
	marked []bool
	// yMax is the top of the y axis.
	yMax float64
	// unit is appended to values in the text rendering (" %").
	unit string
}

// Charts returns the report's "Charts" section: Mermaid xychart-beta
// diagrams, which GitHub, GitLab and most wikis render in Markdown, of the
// exposure over time with the rollback marked by a bar, and of each judged
// metric per recorded observation, with the threshold of the metric that
// triggered the rollback as a flat second line. It returns "" when there is
// nothing to chart. [Report.ChartsText] draws the same charts as text.
//
// The record keeps the metrics of the baseline, of the last observation of
// each step's bake, of the post-deployment checks and of the rollback's
// verification, and the value and threshold of the trigger: those are the
// points charted, not every observation.
func (rep *Report) Charts() string {
	charts := rep.charts()
	if len(charts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n### Charts\n")
	for _, c := range charts {
		b.WriteString("\n```mermaid\n")
		b.WriteString(c.mermaid())
		b.WriteString("```\n")
	}
	return b.String()
}

// ChartsText draws the report's charts as plain text, for terminals: one
// bar per point, the threshold marked with "|" and the rollback with "<".
func (rep *Report) ChartsText() string {
	var b strings.Builder
	for i, c := range rep.charts() {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(c.text())
	}
	return b.String()
}

// charts builds the exposure chart and one chart per judged metric.
func (rep *Report) charts() []chart {
	var out []chart
	if c, ok := rep.exposureChart(); ok {
		out = append(out, c)
	}
	return append(out, rep.metricCharts()...)
}

// rolledBack reports whether the release started a rollback, and when.
func (rep *Report) rolledBack() (time.Time, bool) {
	if rep.Trigger == nil || rep.Trigger.Kind == state.TriggerBlocked || rep.Trigger.At.IsZero() {
		return time.Time{}, false
	}
	return rep.Trigger.At, true
}

func (rep *Report) since(t time.Time) string {
	return "+" + t.Sub(rep.Started).Round(time.Second).String()
}

// exposureChart has a point per moment the exposure changed, plus the
// start, the rollback and the end.
func (rep *Report) exposureChart() (chart, bool) {
	c := chart{title: "Exposure over time", yTitle: "exposure (%)", yMax: 100, unit: " %"}
	rb, hasRB := rep.rolledBack()
	if hasRB {
		c.title = "Exposure over time (bar: rollback at " + rep.since(rb) + ")"
	}
	last := ""
	for i, e := range rep.Timeline {
		label := rep.since(e.At)
		mark := hasRB && e.At.Equal(rb)
		v := e.Exposure * 100
		if label == last { // the same moment: keep the exposure after it
			n := len(c.values) - 1
			c.values[n] = v
			c.marked[n] = c.marked[n] || mark
			if mark && !strings.HasSuffix(c.labels[n], " rollback") {
				c.labels[n] += " rollback"
			}
			continue
		}
		end := i == len(rep.Timeline)-1
		if n := len(c.values); n > 0 && c.values[n-1] == v && !mark && !end {
			continue
		}
		if mark {
			label += " rollback"
		}
		c.labels, c.values, c.marked = append(c.labels, label), append(c.values, v), append(c.marked, mark)
		last = rep.since(e.At)
	}
	return c, len(c.values) > 1
}

// metricPoint is one recorded value of a metric.
type metricPoint struct {
	label string
	value float64
	mark  bool
}

// metricCharts charts, per metric, the values the record kept.
//
// The record does not yet keep observations as data: the values are read
// from the timeline entries that summarize an observation as
// "name=value, …" (the baseline, the verdict at the end of each bake, the
// post-deployment checks, the rollback's verification), and from the
// trigger. Once the engine persists each observation's metrics and the
// policy's thresholds, this reads those instead.
func (rep *Report) metricCharts() []chart {
	points := map[string][]metricPoint{}
	add := func(label string, vals map[string]float64) {
		for name, v := range vals {
			points[name] = append(points[name], metricPoint{label: label, value: v})
		}
	}
	rb, hasRB := rep.rolledBack()
	triggerAdded := false
	addTrigger := func() {
		t := rep.Trigger
		if triggerAdded || !hasRB || t.Metric == "" || t.Observed == nil {
			return
		}
		triggerAdded = true
		points[t.Metric] = append(points[t.Metric], metricPoint{label: rep.since(rb) + " " + string(t.Kind), value: *t.Observed, mark: true})
	}
	// values are an entry's measured values; a record written before
	// entries had them has them only in its summary text.
	values := func(e state.Entry) map[string]float64 {
		if e.Values != nil {
			return e.Values
		}
		return parseSummary(e.Detail)
	}
	for _, e := range rep.Timeline {
		if hasRB && !e.At.Before(rb) {
			addTrigger()
		}
		switch {
		case e.Kind == state.EntryObservation && e.Name == "baseline":
			add("baseline", values(e))
		case e.Kind == state.EntryObservation && e.Outcome == state.OutcomeHealthy:
			// A look kept while a step baked or a window watched.
			add(rep.since(e.At)+" "+e.Name, values(e))
		case e.Kind == state.EntryVerdict && (e.Outcome == state.OutcomeHealthy || e.Outcome == state.OutcomePassed):
			add(rep.since(e.At)+" "+e.Name, values(e)) // the step, or the checks
		case e.Kind == state.EntryRollback && e.Name == "verify" && e.Outcome == state.OutcomeVerified:
			add(rep.since(e.At)+" rollback verified", values(e))
		}
	}
	addTrigger()
	var out []chart
	for _, name := range slices.Sorted(maps.Keys(points)) {
		ps := points[name]
		if len(ps) < 2 {
			continue
		}
		c := chart{title: name + " per observation", yTitle: name}
		if t := rep.Trigger; hasRB && t.Metric == name && t.Threshold != nil {
			c.threshold = t.Threshold
			c.title += " (flat line: threshold " + mnum(*t.Threshold) + ")"
		}
		seen := map[string]int{}
		for _, p := range ps {
			if seen[p.label]++; seen[p.label] > 1 { // Mermaid merges equal categories
				p.label += fmt.Sprintf(" (%d)", seen[p.label])
			}
			c.labels, c.values, c.marked = append(c.labels, p.label), append(c.values, p.value), append(c.marked, p.mark)
			c.yMax = max(c.yMax, p.value)
		}
		if c.threshold != nil {
			c.yMax = max(c.yMax, *c.threshold)
		}
		c.yMax = niceMax(c.yMax)
		out = append(out, c)
	}
	return out
}

// parseSummary reads "name=value" pairs from an observation's summary
// ("error_rate=0.001, latency_p95_seconds=0.12, smoke ok"), skipping
// metrics with no data and checks.
func parseSummary(s string) map[string]float64 {
	out := map[string]float64{}
	for _, part := range strings.Split(s, ", ") {
		name, val, ok := strings.Cut(part, "=")
		if !ok || name == "" || strings.ContainsAny(name, " :") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[name] = v
		}
	}
	return out
}

// niceMax rounds v up to a round top for an axis: 1, 2 or 5 times a power
// of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// mnum formats v for Mermaid, whose numbers have no exponent: at most four
// significant digits.
func mnum(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// quote makes s a Mermaid string, which cannot hold a double quote.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, "'") + `"` }

// mermaid writes the chart as an xychart-beta diagram.
func (c chart) mermaid() string {
	var b strings.Builder
	b.WriteString("xychart-beta\n")
	fmt.Fprintf(&b, "    title %s\n", quote(c.title))
	labels := make([]string, len(c.labels))
	for i, l := range c.labels {
		labels[i] = quote(l)
	}
	fmt.Fprintf(&b, "    x-axis [%s]\n", strings.Join(labels, ", "))
	fmt.Fprintf(&b, "    y-axis %s 0 --> %s\n", quote(c.yTitle), mnum(c.yMax))
	list := func(f func(i int) float64) string {
		s := make([]string, len(c.values))
		for i := range s {
			s[i] = mnum(f(i))
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	if slices.Contains(c.marked, true) {
		fmt.Fprintf(&b, "    bar %s\n", list(func(i int) float64 {
			if c.marked[i] {
				return c.yMax
			}
			return 0
		}))
	}
	fmt.Fprintf(&b, "    line %s\n", list(func(i int) float64 { return c.values[i] }))
	if c.threshold != nil {
		fmt.Fprintf(&b, "    line %s\n", list(func(int) float64 { return *c.threshold }))
	}
	return b.String()
}

// textWidth is the width of the bars of the text charts.
const textWidth = 30

// text draws the chart with a bar per point.
func (c chart) text() string {
	var b strings.Builder
	b.WriteString(c.title + "\n")
	w := 0
	for _, l := range c.labels {
		w = max(w, len(l))
	}
	cells := func(v float64) int { return int(math.Round(v / c.yMax * textWidth)) }
	for i, l := range c.labels {
		bar := []byte(strings.Repeat("#", min(cells(c.values[i]), textWidth)) + strings.Repeat(" ", textWidth-min(cells(c.values[i]), textWidth)))
		if c.threshold != nil {
			if t := min(cells(*c.threshold), textWidth-1); bar[t] == ' ' || bar[t] == '#' {
				bar[t] = '|'
			}
		}
		mark := ""
		if c.marked[i] {
			mark = " <"
		}
		fmt.Fprintf(&b, "  %-*s [%s] %s%s%s\n", w, l, bar, mnum(c.values[i]), c.unit, mark)
	}
	return b.String()
}
