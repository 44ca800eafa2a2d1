package rollback

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// Sequential rolls back when a counted rate — the error rate over requests,
// by default — rises significantly over the control (the stable version
// over the same window) or, without one, over the preflight baseline, by a
// mixture sequential probability ratio test whose p-value stays valid
// however often it looks (see "Sequential judge" in the package
// documentation).
//
// Two numbers say what it is for: Catch, the rise it is powered to catch
// (it sets the test's mixing scale), and Tolerate, the rise it lets pass
// (the null hypothesis is "the new version's rate is at most the
// reference's times 1 + Tolerate"). A rise between the two is what a
// fixed-horizon threshold set at Catch would miss half the time; here it is
// caught with growing power as requests accumulate.
//
// Its evidence accumulates over the release: every step, the post-deployment
// checks and every window of the watch add to one test, so that a
// regression too small to show in the 1 % step is caught at 5 % or 25 %
// with the 1 % step's requests counted too. It keeps that state in the
// release's [Counters] (see [StatefulTrigger]); the runner saves it with the
// record, so a resumed release goes on with the same test.
//
// Latency is judged the same way as the share of requests slower than a
// bound, monitor.SlowRate (for example the share above the stable
// version's p95, or above an SLO's bound, from a latency histogram's
// buckets): a p95 that rises is a slow share that rises above 5 %, and
// the share, unlike a sample quantile, is a counted rate whose variance is
// known.
//
// The metric must be a counted rate in [0, 1] (monitor.Rate, or a PromQL
// instant query with a Count) whose counts are cumulative since the window
// began, as the Prometheus source's window since Target.Since is; counts
// seen to be per look instead (they fall within a window) are taken as new
// data each look. A rate that is not counted is judged as a plain
// threshold at the reference times 1 + Catch, and the reason says so.
//
// Outcomes: Fail when the always-valid p-value is at most the level and the
// rate is above Floor; Pass when it is not ("no significant rise"), with
// the rise the requests judged so far could detect in the reason;
// Inconclusive when there is no data, no reference, or the rate is above
// the tolerated one on so few requests that even all of them failing could
// not be significant.
type Sequential struct {
	// Metric is the metric name; empty means monitor.ErrorRate.
	Metric string
	// Catch is the relative rise the test is powered for: 0.5 is +50 %.
	// 0 means 0.5. It must be above Tolerate.
	Catch float64
	// Tolerate is the relative rise that passes: 0 (the default) tolerates
	// none, 0.1 lets +10 % pass.
	Tolerate float64
	// Alpha is the test's level, the chance that it ever fails a release
	// whose rate is within Tolerate: 0 means 0.05. Four fifths of it go to
	// the sequence (the always-valid p-value is compared with 0.8·Alpha),
	// one fifth to the upper confidence bound of the baseline's rate, which
	// is the reference when there is no control.
	Alpha float64
	// Floor is a business rule: a rate at or below it always passes ("never
	// care below 0.1 %"). 0 means none; the test needs no floor to be safe.
	Floor float64
	// Percent formats values as percentages; on by default for
	// monitor.ErrorRate.
	Percent bool
}

// DefaultCatch is the rise Sequential is powered for when Catch is 0.
const DefaultCatch = 0.5

// DefaultAlpha is Sequential's level when Alpha is 0.
const DefaultAlpha = 0.05

func (t Sequential) metric() string {
	if t.Metric == "" {
		return monitor.ErrorRate
	}
	return t.Metric
}

func (t Sequential) catch() float64 {
	if t.Catch == 0 {
		return DefaultCatch
	}
	return t.Catch
}

func (t Sequential) alpha() float64 {
	if t.Alpha == 0 {
		return DefaultAlpha
	}
	return t.Alpha
}

// level is the level of the sequence: 4/5 of Alpha, the rest being spent
// on the baseline's bound.
func (t Sequential) level() float64 { return t.alpha() * 0.8 }

// Name returns "sequential:" and the metric name.
func (t Sequential) Name() string {
	if t.Metric == "" || t.Metric == monitor.ErrorRate {
		return "sequential:" + monitor.ErrorRate // a constant: no allocation a look
	}
	return "sequential:" + t.Metric
}

// Condition describes the trigger.
func (t Sequential) Condition() string {
	s := fmt.Sprintf("%s rises significantly over +%s relative to the control or baseline (sequential test at %s, powered for +%s)",
		human(t.metric()), pct(t.Tolerate), pct(t.alpha()), pct(t.catch()))
	if t.Floor > 0 {
		s += fmt.Sprintf(", above %s", string(appendValue(nil, t.Floor, t.percent())))
	}
	return s
}

func (t Sequential) percent() bool {
	return t.Percent || t.metric() == monitor.ErrorRate || t.metric() == monitor.SlowRate
}

// Validate reports a Catch not above Tolerate, a negative or NaN Tolerate
// or Floor, or an Alpha outside [0, 1).
func (t Sequential) Validate() error {
	switch {
	case !validFraction(t.Tolerate):
		return fmt.Errorf("Sequential.Tolerate %v must be a finite number >= 0: %w", t.Tolerate, ErrInvalid)
	case !validFraction(t.Catch) || (t.Catch != 0 && t.Catch <= t.Tolerate) || (t.Catch == 0 && DefaultCatch <= t.Tolerate):
		return fmt.Errorf("Sequential.Catch %v must be a finite rise above Tolerate %v: %w", t.Catch, t.Tolerate, ErrInvalid)
	case !(t.Alpha >= 0 && t.Alpha < 1):
		return fmt.Errorf("Sequential.Alpha %v must be in [0, 1): %w", t.Alpha, ErrInvalid)
	case !validFraction(t.Floor):
		return fmt.Errorf("Sequential.Floor %v must be a finite number >= 0: %w", t.Floor, ErrInvalid)
	}
	return nil
}

// StatefulTrigger is a Trigger that keeps state between the observations
// of a release, such as [Sequential]'s accumulated evidence. [Policy.Judge]
// gives it the state it returned last time for this release (nil at
// first) and keeps the new one in [Counters].Judge, which the runner saves
// with the release's record and restores on Resume. The state is opaque
// bytes; EvaluateState must not keep or change the slice it is given, and
// must cope with a state it cannot read (start afresh and say so).
// Evaluate is the same judgement from no state.
type StatefulTrigger interface {
	Trigger
	EvaluateState(state []byte, obs, baseline monitor.Observation) (Result, []byte)
}

// seqState is Sequential's state: the evidence so far and the counts of
// the current window already added to it.
type seqState struct {
	// Since is the start of the current window (Observation.Since).
	Since time.Time
	// N1, X1 are the canary's requests and errors of the current window
	// already counted; N0, X0 the control's, valid when Ctl is set.
	N1, X1, N0, X0 float64
	Ctl            bool
	// PerLook is set once the source's counts are seen to be per look
	// rather than cumulative.
	PerLook bool
	// Requests and Errors are the canary's, judged in all windows.
	Requests, Errors float64
	// P is the always-valid p-value: the running minimum of 1/Λ.
	P float64
	// Bound is the baseline's upper confidence bound, for the baseline of
	// BN requests and BX errors.
	Bound  float64
	BN, BX int
	// LL is log LR at each point of the grid (an array: a state read for
	// a look is not allocated).
	LL [msprtGrid]float64
}

// seqVersion leads the encoded state.
const seqVersion = 1

// seqFields is the number of float64 fields before LL in the encoding.
const seqFields = 15

// encode writes st as little-endian float64s: the version, the fields,
// then LL. Exact, and a few hundred nanoseconds.
func (st *seqState) encode() []byte {
	var since float64
	hasSince := 0.0
	if !st.Since.IsZero() {
		since, hasSince = float64(st.Since.UnixNano()), 1
	}
	ctl := 0.0
	if st.Ctl {
		ctl = 1
	}
	perLook := 0.0
	if st.PerLook {
		perLook = 1
	}
	head := [seqFields]float64{seqVersion, hasSince, since, st.N1, st.X1, st.N0, st.X0, ctl, st.Requests, st.Errors, st.P, st.Bound, float64(st.BN), float64(st.BX), perLook}
	b := make([]byte, 8*(seqFields+len(st.LL)))
	for i, v := range head {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	for i, v := range st.LL {
		binary.LittleEndian.PutUint64(b[8*(seqFields+i):], math.Float64bits(v))
	}
	return b
}

// decode reads what encode wrote; false when b is not such a state.
func (st *seqState) decode(b []byte) bool {
	if len(b) != 8*(seqFields+msprtGrid) {
		return false
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])) }
	if f(0) != seqVersion {
		return false
	}
	*st = seqState{N1: f(3), X1: f(4), N0: f(5), X0: f(6), Ctl: f(7) == 1, Requests: f(8), Errors: f(9), P: f(10), Bound: f(11), BN: int(f(12)), BX: int(f(13)), PerLook: f(14) == 1}
	if f(1) == 1 {
		st.Since = time.Unix(0, int64(f(2))).UTC()
	}
	for i := range st.LL {
		st.LL[i] = f(seqFields + i)
	}
	return true
}

// Evaluate judges one observation as the first of a release.
func (t Sequential) Evaluate(obs, baseline monitor.Observation) Result {
	r, _ := t.EvaluateState(nil, obs, baseline)
	return r
}

// EvaluateState judges obs given the state of the previous observations
// and returns the new state. A state it cannot read starts afresh (the
// reason says so).
func (t Sequential) EvaluateState(state []byte, obs, baseline monitor.Observation) (Result, []byte) {
	return t.evaluateState(state, obs, baseline, false, false)
}

// evaluateState is EvaluateState; brief leaves a passing look's test
// figures out of its reason, and quiet its whole reason (see
// Policy.JudgeBrief).
func (t Sequential) evaluateState(state []byte, obs, baseline monitor.Observation, brief, quiet bool) (Result, []byte) {
	var st seqState
	fresh := len(state) == 0
	lost := !fresh && !st.decode(state)
	if fresh || lost {
		st = seqState{P: 1}
	}
	before := st
	r, changed := t.judge(&st, obs, baseline, brief, quiet)
	// A look that brought no new data (the counts did not move) leaves
	// the state as it was: nothing to write again.
	changed = changed && st != before
	if lost && r.Reason != "" {
		r.Reason += " (the test's saved state could not be read: it started afresh)"
	}
	r.Trigger = t.Name()
	if !changed && !fresh && !lost {
		return r, state
	}
	return r, st.encode()
}

// judge updates st with obs and returns the result; changed reports
// whether st changed. quiet leaves a passing result's reason empty.
func (t Sequential) judge(st *seqState, obs, baseline monitor.Observation, brief, quiet bool) (Result, bool) {
	name := t.metric()
	percent := t.percent()
	m := obs.Metric(name)
	if !m.HasData() {
		var r Result
		return withReason(&r, noData(&r, nil, name)), false
	}
	ref, label, n, ok := reference(&m, &baseline, name)
	if !ok {
		var r Result
		b := appendValue(append([]byte(human(name)), ' '), m.Value, percent)
		return withReason(&r, noReference(&r, b, name, m)), false
	}
	c := 1 + t.Tolerate
	r := Result{Metric: name, Observed: m.Value, Baseline: ref, Reference: label, Threshold: ref * c, Samples: n}
	var text [320]byte // the reason, on the stack until it is a string
	// head is the reason's beginning: "error rate 0.4 % vs control 0.3 % (+33 %)".
	head := func() []byte {
		b := append(append(text[:0], human(name)...), ' ')
		b = appendValue(b, m.Value, percent)
		b = append(b, " vs "...)
		b = append(b, label...)
		b = append(b, ' ')
		b = appendValue(b, ref, percent)
		return appendChange(b, m.Value, ref)
	}

	if !m.Counted || m.Value < 0 || m.Value > 1 {
		// No counts: a plain threshold at the rise to catch.
		limit := ref * (1 + t.catch())
		r.Threshold = max(limit, t.Floor)
		if m.Value > limit && m.Value > t.Floor {
			r.Outcome = Fail
		} else if quiet {
			return r, false
		}
		b := head()
		if r.Outcome == Fail {
			b = append(b, " > +"...)
		} else {
			b = append(b, " within +"...)
		}
		b = appendPct(b, t.catch())
		b = append(b, " (not a counted rate: judged as a plain threshold, without the sequential test)"...)
		return withReason(&r, appendSamples(b, m)), false
	}

	// The window: counts are cumulative since Observation.Since, and
	// each look adds what the last did not count. A source whose counts
	// are per look instead (the requests fell by a tenth within a window,
	// or the errors changed while the requests did not) is seen as such
	// from then on: each of its looks is new data.
	n1, x1 := float64(m.Samples), m.Value*float64(m.Samples)
	if !st.PerLook && obs.Since.Equal(st.Since) && (n1 < 0.9*st.N1 || n1 == st.N1 && x1 != st.X1) {
		st.PerLook = true
	}
	if st.PerLook || !obs.Since.Equal(st.Since) || (obs.Since.IsZero() && n1 < st.N1) {
		st.Since, st.N1, st.X1, st.N0, st.X0, st.Ctl = obs.Since, 0, 0, 0, 0, true
	}
	d1n, d1x := max(n1-st.N1, 0), max(x1-st.X1, 0)
	st.N1, st.X1 = max(st.N1, n1), max(st.X1, x1)
	mix := mixtureFor(tauFor(t.catch(), t.Tolerate))
	var bound float64 // the baseline's upper bound, when it is the reference
	added := false    // whether the grid took new evidence
	if label == "control" {
		n0, x0 := float64(m.ControlSamples), m.Control*float64(m.ControlSamples)
		if st.Ctl {
			d0n, d0x := max(n0-st.N0, 0), max(x0-st.X0, 0)
			added = mix.addControl(st.LL[:], d1x, d1n, d0x, d0n, c)
		}
		st.N0, st.X0, st.Ctl = max(st.N0, n0), max(st.X0, x0), true
	} else {
		bm := baseline.Metric(name)
		bound = ref
		// The baseline comes from the same source as the metric: when the
		// metric is counted, so is its baseline (a record keeps a
		// baseline's value and samples, not the flag).
		if bm.Samples > 0 {
			bx := int(math.Round(bm.Value * float64(bm.Samples)))
			if st.Bound == 0 || st.BN != bm.Samples || st.BX != bx {
				st.Bound, st.BN, st.BX = upperBound(bx, bm.Samples, t.alpha()/5), bm.Samples, bx
			}
			bound = st.Bound
		}
		added = mix.addBaseline(st.LL[:], d1x, d1n, min(bound*c, 1))
		st.Ctl = false
	}
	st.Requests += d1n
	st.Errors += d1x
	if added {
		// Λ mixes the grid's likelihood ratios with weights that sum to 1:
		// when no point favours a rise (every log LR ≤ 0), Λ ≤ 1 and the
		// p-value cannot fall, so the exponentials are not worth
		// computing. Without new evidence the grid, and so Λ, is what the
		// last look found, and the p-value (their running minimum) with
		// it: a look of a source whose counts did not move costs nothing
		// here.
		ll := 0.0
		if anyAbove0(&st.LL) {
			ll = mix.logLambda(st.LL[:])
		}
		st.P = min(st.P, math.Exp(-ll), 1)
	}
	level := t.level()
	rejected := st.P <= level

	switch {
	case rejected && m.Value > t.Floor:
		r.Outcome = Fail
	case !rejected && m.Value > ref*c && t.tooFew(st, mix, m, label, bound*c):
		r.Outcome = Inconclusive
	}
	if quiet && r.Outcome == Pass {
		return r, true
	}
	b := head()
	switch {
	case r.Outcome == Fail:
		b = append(b, ": a significant rise over +"...)
	case rejected:
		b = append(b, ": at or below the "...)
		b = appendValue(b, t.Floor, percent)
		b = append(b, " floor, though significantly over +"...)
	case r.Outcome == Inconclusive:
		b = append(b, ": above +"...)
		b = appendPct(b, t.Tolerate)
		b = append(b, ", but "...)
		b = strconv.AppendInt(b, int64(m.Samples), 10)
		b = append(b, " requests are too few to tell, even were all failed"...)
		return withReason(&r, appendSeq(b, st, level)), true
	default:
		b = append(b, ": no significant rise over +"...)
	}
	b = appendPct(b, t.Tolerate)
	if brief && r.Outcome == Pass {
		return withReason(&r, b), true
	}
	b = appendSeq(b, st, level)
	if r.Outcome == Pass {
		// What the requests judged so far could detect.
		k := math.Inf(1)
		if label == "control" && m.Samples > 0 {
			k = float64(m.ControlSamples) / float64(m.Samples)
		}
		if d := Detectable(st.Requests, ref*c, t.alpha(), DefaultPower, k); ref > 0 && !math.IsInf(d, 1) {
			b = append(b, "; enough to detect +"...)
			b = appendPct(b, math.Round(d*100)/100)
			if d > t.catch() {
				b = append(b, ", not yet +"...)
				b = appendPct(b, t.catch())
			}
		}
	}
	return withReason(&r, b), true
}

// tooFew reports whether even all the canary's requests of this window
// failing would leave the test short of significance.
func (t Sequential) tooFew(st *seqState, mix *mixture, m monitor.Metric, label string, p float64) bool {
	grid := st.LL
	ll := grid[:]
	n1 := float64(m.Samples)
	// Add the difference between all failing and what was observed.
	extra := n1 - m.Value*n1
	if extra <= 0 {
		return false
	}
	if label == "control" {
		mix.addControl(ll, extra, n1, 0, float64(m.ControlSamples), 1+t.Tolerate)
	} else {
		mix.addBaseline(ll, extra, extra, p)
	}
	return math.Exp(-mix.logLambda(ll)) > t.level()
}

// appendSeq appends the test's figures: " (always-valid p 0.031 ≤ 0.04; 12
// errors in 9600 requests judged)".
func appendSeq(b []byte, st *seqState, level float64) []byte {
	b = append(b, " (always-valid p "...)
	b = strconv.AppendFloat(b, st.P, 'g', 2, 64)
	if st.P <= level {
		b = append(b, " <= "...)
	} else {
		b = append(b, " > "...)
	}
	b = strconv.AppendFloat(b, level, 'g', 2, 64)
	b = append(b, "; "...)
	b = appendCount(b, st.Errors, " error", " errors")
	b = append(b, " in "...)
	b = appendCount(b, st.Requests, " canary request", " canary requests")
	return append(b, " judged)"...)
}

func withReason(r *Result, b []byte) Result {
	r.Reason = string(b)
	return *r
}

// anyAbove0 reports whether some point of the grid favours a rise.
func anyAbove0(ll *[msprtGrid]float64) bool {
	for _, l := range ll {
		if l > 0 {
			return true
		}
	}
	return false
}

// appendCount appends n, rounded, with the singular or plural noun.
func appendCount(b []byte, n float64, one, many string) []byte {
	n = math.Round(n)
	b = strconv.AppendFloat(b, n, 'f', 0, 64)
	if n == 1 {
		return append(b, one...)
	}
	return append(b, many...)
}
