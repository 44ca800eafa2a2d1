package deploy_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
)

// The xychart grammar, as Mermaid defines it in
// packages/mermaid/src/diagrams/xychart/parser/xychart.jison: a first line
// "xychart-beta" (or "xychart") with an optional orientation, then one
// statement per line — title <text>; x-axis [<text>] [<band> | <n> --> <n>];
// y-axis [<text>] [<n> --> <n>]; line|bar [<text>] [<n>, …] — where a text
// is a double-quoted string holding no double quote, or a word of letters,
// digits and + = * # _ . & -, and a number has no exponent.
var (
	mmText   = `(?:"[^"\n]*"|[A-Za-z0-9+=*#_.&-]+)`
	mmNumber = `[+-]?(?:\d+(?:\.\d+)?|\.\d+)`
	mmBand   = `\[\s*` + mmText + `(?:\s*,\s*` + mmText + `)*\s*\]`
	mmNums   = `\[\s*` + mmNumber + `(?:\s*,\s*` + mmNumber + `)*\s*\]`
	mmRange  = mmNumber + `\s*-->\s*` + mmNumber
	mmFirst  = regexp.MustCompile(`^xychart(?:-beta)?(?:\s+(?:vertical|horizontal))?$`)
	mmStmts  = map[string]*regexp.Regexp{
		"title":  regexp.MustCompile(`^title\s+` + mmText + `$`),
		"x-axis": regexp.MustCompile(`^x-axis(?:\s+` + mmText + `)?(?:\s+(?:` + mmBand + `|` + mmRange + `))?$`),
		"y-axis": regexp.MustCompile(`^y-axis(?:\s+` + mmText + `)?(?:\s+` + mmRange + `)?$`),
		"line":   regexp.MustCompile(`^line(?:\s+` + mmText + `)?\s+` + mmNums + `$`),
		"bar":    regexp.MustCompile(`^bar(?:\s+` + mmText + `)?\s+` + mmNums + `$`),
	}
	mmItems = regexp.MustCompile(`"[^"\n]*"|[^\s,\[\]]+`)
)

// checkXYChart reports the first way diagram breaks the xychart grammar,
// or a data series whose length differs from the x axis's categories.
func checkXYChart(diagram string) error {
	lines := strings.Split(strings.TrimRight(diagram, "\n"), "\n")
	if !mmFirst.MatchString(strings.TrimSpace(lines[0])) {
		return fmt.Errorf("line 1 %q is not xychart-beta", lines[0])
	}
	categories := -1
	for i, l := range lines[1:] {
		l = strings.TrimSpace(l)
		kw, _, _ := strings.Cut(l, " ")
		re, ok := mmStmts[kw]
		if !ok || !re.MatchString(l) {
			return fmt.Errorf("line %d %q is not a valid statement", i+2, l)
		}
		open, quoted := -1, false
		for j, c := range l {
			if c == '"' {
				quoted = !quoted
			} else if c == '[' && !quoted {
				open = j
				break
			}
		}
		if open < 0 {
			continue
		}
		n := len(mmItems.FindAllString(l[open:], -1))
		switch {
		case kw == "x-axis":
			categories = n
		case (kw == "line" || kw == "bar") && categories >= 0 && n != categories:
			return fmt.Errorf("line %d %q has %d values for %d categories", i+2, l, n, categories)
		}
	}
	return nil
}

// mermaidBlocks returns the bodies of the ```mermaid blocks of md.
func mermaidBlocks(md string) []string {
	var out []string
	for _, part := range strings.Split(md, "```mermaid\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		out = append(out, body)
	}
	return out
}

func TestChartCheckerRefusesWhatMermaidRefuses(t *testing.T) {
	for _, bad := range []string{
		"graph TD\n",
		"xychart-beta\n    title \"a \"quoted\" word\"\n",
		"xychart-beta\n    x-axis [a, b]\n    line [1e3, 2]\n",
		"xychart-beta\n    x-axis [a, b]\n    line [1, 2, 3]\n",
		"xychart-beta\n    y-axis \"y\" 0 -> 1\n",
		"xychart-beta\n    line [NaN, 1]\n",
	} {
		if checkXYChart(bad) == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
	good := "xychart-beta\n    title \"Sales (in $)\"\n    x-axis \"month\" [jan, \"feb 2\", mar]\n    y-axis \"Revenue\" 4000 --> 11000\n    bar [5000, -6000, .5]\n    line [1, 2.25, +3]\n"
	if err := checkXYChart(good); err != nil {
		t.Errorf("refused the docs' example: %v", err)
	}
}

func TestChartOfARolledBackReleaseMarksTheRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 1)}
		h := newHarness(t, s, deploytest.Regression(1, deploytest.Health{ErrorRate: 0.001, P95: 900 * time.Millisecond}))
		rep, _ := h.runner.Run(t.Context(), rel)
		if rep.Status != deploy.RolledBack {
			t.Fatalf("status %s", rep.Status)
		}
		md := rep.Charts()
		golden(t, "chart-rolled-back.md", md)
		golden(t, "chart-rolled-back.txt", rep.ChartsText())
		blocks := mermaidBlocks(md)
		if len(blocks) != 3 {
			t.Fatalf("%d charts, want exposure, error_rate and latency_p95_seconds", len(blocks))
		}
		for _, b := range blocks {
			if err := checkXYChart(b); err != nil {
				t.Errorf("%v in\n%s", err, b)
			}
		}
		if !strings.Contains(rep.Markdown(), md) {
			t.Error("the report does not hold the charts")
		}
	})
}

// TestChartStaysInTheGrammarWhateverTheNames: step names and metrics with
// quotes, percent signs and commas still make valid diagrams.
func TestChartStaysInTheGrammarWhateverTheNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: []deploytest.StepSpec{
			{Name: `say "hi", 5%`, Exposure: 0.05, Bake: 5 * time.Minute},
			{Name: "all [everyone]", Exposure: 1, Bake: 5 * time.Minute},
		}}
		h := newHarness(t, s, deploytest.Healthy(), deploy.WithSchedule(monitor.Schedule{}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		blocks := mermaidBlocks(rep.Markdown())
		if len(blocks) == 0 {
			t.Fatal("no charts")
		}
		for _, b := range blocks {
			if err := checkXYChart(b); err != nil {
				t.Errorf("%v in\n%s", err, b)
			}
		}
	})
}

// TestChartNothingToChart: a blocked release has no chart.
func TestChartNothingToChart(t *testing.T) {
	rep := &deploy.Report{Status: deploy.Blocked}
	if got := rep.Charts() + rep.ChartsText(); got != "" {
		t.Errorf("charts of an empty report: %q", got)
	}
}
