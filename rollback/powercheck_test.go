package rollback

import (
	"math"
	"strings"
	"testing"
	"time"
)

var ramp5 = []Exposure{{"1%", 0.01, 10 * time.Minute}, {"5%", 0.05, 10 * time.Minute}, {"25%", 0.25, 10 * time.Minute}, {"50%", 0.5, 10 * time.Minute}, {"100%", 1, 10 * time.Minute}}

// TestPowerMatchesTheClosedForm: the power check's figures are the
// closed-form sample size's for the same inputs, and it says so in the
// issue's words.
func TestPowerMatchesTheClosedForm(t *testing.T) {
	p := Policy{Triggers: []Trigger{Sequential{Catch: 0.5}}}
	pw := p.Power(Traffic{RequestsPerSecond: 200, ErrorRate: 0.003}, ramp5)
	if len(pw) != 1 {
		t.Fatalf("%d power checks", len(pw))
	}
	w := pw[0]
	if !w.OK {
		t.Errorf("the ramp at 200 req/s cannot catch +50 %%: %s", w.Summary)
	}
	first := w.Steps[0]
	if first.Requests != 1200 || first.Catches {
		t.Errorf("step 1 %%: %v requests, catches %v", first.Requests, first.Catches)
	}
	if want := Detectable(1200, 0.003, 0.05, 0.8, 99); first.Detectable != want {
		t.Errorf("detectable at 1 %%: %v, want %v", first.Detectable, want)
	}
	// The example: 1,200 requests, +50 % needs ≈9,600: 80 min at 1 % or 16 min at 5 %.
	if want := "step 1 % × 10m0s sees ≈1,200 requests: it can catch +158 % on 0.3 %, not +50 %; +50 % needs ≈9,600: 1h20m0s at 1 % or 17m0s at 5 %"; first.Line != want {
		t.Errorf("line\n got %q\nwant %q", first.Line, want)
	}
	if n := SampleSize(0.003, 0.5, 0.05, 0.8, 99); math.Abs(w.Needed-n) > 1e-9 {
		t.Errorf("needed %v, closed form %v", w.Needed, n)
	}
	// By the end of 25 %, 37,200 requests: enough.
	if s := w.Steps[2]; s.Cumulative != 37200 || !s.Catches {
		t.Errorf("25 %%: %+v", s)
	}
}

func TestPowerSaysWhenNoStepCanCatch(t *testing.T) {
	p := Policy{Triggers: []Trigger{CriticalChecks{}, Sequential{Catch: 0.5}}}
	w := p.Power(Traffic{RequestsPerSecond: 5, ErrorRate: 0.003, Measured: true}, ramp5)[0]
	if w.OK || !strings.Contains(w.Summary, "no step before full exposure can catch +50 %") || !strings.Contains(w.Summary, "measured by the baseline") {
		t.Errorf("%v: %s", w.OK, w.Summary)
	}
}
