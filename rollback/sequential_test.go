package rollback

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

var seqT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// look is an observation of an error rate counted over n1 canary requests
// with x1 errors, against a control of n0 requests and x0 errors (none
// when n0 is 0), in the window that began at since.
func look(since time.Time, x1, n1, x0, n0 int) monitor.Observation {
	m := monitor.Rate(float64(x1)/float64(n1), n1)
	if n0 > 0 {
		m.Control, m.ControlSamples = float64(x0)/float64(n0), n0
	}
	o := monitor.Observation{Since: since}
	o.Set(monitor.ErrorRate, m)
	return o
}

func TestSequentialOutcomes(t *testing.T) {
	tr := Sequential{}
	var none monitor.Observation
	base := monitor.Observation{}
	base.Set(monitor.ErrorRate, monitor.Rate(0.003, 120000))
	for _, c := range []struct {
		name     string
		obs      monitor.Observation
		base     monitor.Observation
		want     Outcome
		contains string
	}{
		{"no data is inconclusive", monitor.Observation{}, none, Inconclusive, "no data"},
		{"no reference is inconclusive", look(seqT0, 1, 100, 0, 0), none, Inconclusive, "no baseline or control"},
		{"a healthy canary passes, saying what it could detect", look(seqT0, 4, 1200, 356, 118800), none, Pass, "no significant rise over +0 %"},
		{"+200 % over 6,000 requests fails", look(seqT0, 54, 6000, 342, 114000), none, Fail, "a significant rise"},
		{"one error in two requests is too few to tell", look(seqT0, 1, 2, 30, 9998), none, Inconclusive, "too few to tell"},
		{"against the baseline when there is no control", look(seqT0, 90, 12000, 0, 0), base, Fail, "vs baseline 0.3 %"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := tr.Evaluate(c.obs, c.base)
			if r.Outcome != c.want || !strings.Contains(r.Reason, c.contains) {
				t.Errorf("%s: %q; want %s containing %q", r.Outcome, r.Reason, c.want, c.contains)
			}
			if r.Trigger != "sequential:error_rate" {
				t.Errorf("trigger %q", r.Trigger)
			}
		})
	}
}

func TestSequentialFloorIsABusinessRule(t *testing.T) {
	obs := look(seqT0, 54, 6000, 342, 114000) // 0.9 % vs 0.3 %
	if r := (Sequential{Floor: 0.01}).Evaluate(obs, monitor.Observation{}); r.Outcome != Pass || !strings.Contains(r.Reason, "at or below the 1.0 % floor") {
		t.Errorf("%s: %q", r.Outcome, r.Reason)
	}
}

func TestSequentialUncountedRateIsAPlainThreshold(t *testing.T) {
	obs := monitor.Observation{}
	m := monitor.Value(0.01, 1)
	m.Control, m.ControlSamples = 0.003, 1
	obs.Set(monitor.ErrorRate, m)
	r := Sequential{}.Evaluate(obs, monitor.Observation{})
	if r.Outcome != Fail || !strings.Contains(r.Reason, "not a counted rate") {
		t.Errorf("%s: %q", r.Outcome, r.Reason)
	}
}

// TestSequentialAccumulatesAcrossWindows: +50 % is not significant in any
// one step's window, but the evidence of the steps adds up.
func TestSequentialAccumulatesAcrossWindows(t *testing.T) {
	tr := Sequential{}
	var state []byte
	var r Result
	steps := []struct{ x1, n1, x0, n0 int }{{5, 1200, 356, 118800}, {27, 6000, 342, 114000}, {135, 30000, 270, 90000}}
	for i, s := range steps {
		alone := tr.Evaluate(look(seqT0.Add(time.Duration(i)*time.Hour), s.x1, s.n1, s.x0, s.n0), monitor.Observation{})
		if alone.Outcome == Fail && i < 2 {
			t.Fatalf("step %d alone: %s", i, alone.Reason)
		}
		r, state = tr.EvaluateState(state, look(seqT0.Add(time.Duration(i)*time.Hour), s.x1, s.n1, s.x0, s.n0), monitor.Observation{})
	}
	if r.Outcome != Fail || !strings.Contains(r.Reason, "37200 canary requests judged") {
		t.Errorf("%s: %q", r.Outcome, r.Reason)
	}
}

// TestSequentialCountsEachRequestOnce: looks of one window repeat its
// cumulative counts; judging the same counts again adds nothing.
func TestSequentialCountsEachRequestOnce(t *testing.T) {
	tr := Sequential{}
	obs := look(seqT0, 10, 2000, 300, 100000)
	r1, s1 := tr.EvaluateState(nil, obs, monitor.Observation{})
	r2, s2 := tr.EvaluateState(s1, obs, monitor.Observation{})
	if r1.Reason != r2.Reason || string(s1) != string(s2) {
		t.Errorf("the same look twice changed the test:\n%s\n%s", r1.Reason, r2.Reason)
	}
}

func TestSequentialUnreadableStateStartsAfresh(t *testing.T) {
	r, s := Sequential{}.EvaluateState([]byte("garbage"), look(seqT0, 4, 1200, 356, 118800), monitor.Observation{})
	if !strings.Contains(r.Reason, "could not be read: it started afresh") || len(s) != 8*(seqFields+msprtGrid) {
		t.Errorf("%q, state of %d bytes", r.Reason, len(s))
	}
}

// TestSequentialPerLookSource: a source that reports each interval's
// counts alone, not cumulative ones, is not blind: once its counts are
// seen to fall, each look is new data.
func TestSequentialPerLookSource(t *testing.T) {
	tr := Sequential{}
	var state []byte
	var r Result
	for i := range 30 {
		n := 1000 - 200*(i%2) // falls and rises: not cumulative
		r, state = tr.EvaluateState(state, look(seqT0, n*9/1000, n, 300, 100000), monitor.Observation{})
		if r.Outcome == Fail {
			break
		}
	}
	if r.Outcome != Fail {
		t.Errorf("+200 %% over 30 per-look intervals: %s", r.Reason)
	}
}

func TestSequentialValidate(t *testing.T) {
	for _, tr := range []Sequential{{Catch: 0.1, Tolerate: 0.2}, {Tolerate: -1}, {Alpha: 1}, {Floor: math.NaN()}, {Tolerate: 0.5}} {
		if err := tr.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", tr, err)
		}
	}
	if err := (Sequential{Catch: 0.5, Tolerate: 0.1, Alpha: 0.01, Floor: 0.001}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestPolicyKeepsTriggerState: Judge keeps a stateful trigger's state in
// Counters.Judge and drops the state of a trigger the policy no longer has.
func TestPolicyKeepsTriggerState(t *testing.T) {
	p := Policy{Triggers: []Trigger{Sequential{}}}
	var c Counters
	p.Judge(&c, look(seqT0, 4, 1200, 356, 118800), monitor.Observation{}, nil)
	if !strings.Contains(c.Judge, `"sequential:error_rate"`) {
		t.Fatalf("Counters.Judge = %q", c.Judge)
	}
	before := c.Judge
	d := p.Judge(&c, look(seqT0, 4, 1200, 356, 118800), monitor.Observation{}, nil)
	if c.Judge != before || d.Verdict != Continue {
		t.Errorf("the same counts again: %s, state changed %v", d.Verdict, c.Judge != before)
	}
	p.Triggers = []Trigger{Sequential{Metric: "other_rate"}}
	obs := look(seqT0, 4, 1200, 356, 118800)
	obs.Set("other_rate", obs.Metric(monitor.ErrorRate))
	p.Judge(&c, obs, monitor.Observation{}, nil)
	if strings.Contains(c.Judge, `"sequential:error_rate"`) || !strings.Contains(c.Judge, `"sequential:other_rate"`) {
		t.Errorf("Counters.Judge = %q", c.Judge)
	}
}

// TestSequentialJudgesLatencyAsASlowShare: a latency judged as the share
// of requests slower than the stable version's p95 — 5 % for the stable
// version — is a counted rate: a canary whose p95 moved up so that 8 % of
// its requests are slower fails, and one at 5 % passes.
func TestSequentialJudgesLatencyAsASlowShare(t *testing.T) {
	tr := Sequential{Metric: monitor.SlowRate, Catch: 0.5}
	at := func(share float64) monitor.Observation {
		m := monitor.Rate(share, 6000)
		m.Control, m.ControlSamples = 0.05, 114000
		o := monitor.Observation{Since: seqT0}
		o.Set(monitor.SlowRate, m)
		return o
	}
	if r := tr.Evaluate(at(0.08), monitor.Observation{}); r.Outcome != Fail || !strings.HasPrefix(r.Reason, "slow-request rate 8.0 % vs control 5.0 % (+60 %): a significant rise") {
		t.Errorf("8 %% slow: %s: %q", r.Outcome, r.Reason)
	}
	if r := tr.Evaluate(at(0.05), monitor.Observation{}); r.Outcome != Pass {
		t.Errorf("5 %% slow: %s: %q", r.Outcome, r.Reason)
	}
}
