package rollback

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// LatencyIncrease rolls back when a latency metric, in seconds, rises by more
// than MaxIncrease over the control or baseline: the checklist's "Response
// time increases by >Yms".
type LatencyIncrease struct {
	// Metric is the metric name, in seconds; empty means monitor.LatencyP95.
	Metric string
	// MaxIncrease is the largest tolerated absolute increase.
	MaxIncrease time.Duration
	// MinSamples is the fewest samples a latency must rest on to be
	// judged. A p95 of a dozen requests is their second-largest, not a
	// 95th percentile: with fewer samples the result passes and its reason
	// says the latency was not judged and why (it is not inconclusive,
	// which would pause and then roll back a release whose canary is
	// merely small). 0 judges every latency with data.
	MinSamples int
}

func (t LatencyIncrease) metric() string {
	if t.Metric == "" {
		return monitor.LatencyP95
	}
	return t.Metric
}

// Name returns "latency-increase:" and the metric name.
func (t LatencyIncrease) Name() string { return joinName(t.nameParts()) }

func (t LatencyIncrease) nameParts() (string, string) {
	if t.Metric == "" || t.Metric == monitor.LatencyP95 {
		return "latency-increase:" + monitor.LatencyP95, "" // a constant
	}
	return "latency-increase:", t.Metric
}

// Condition describes the trigger.
func (t LatencyIncrease) Condition() string {
	return fmt.Sprintf("%s increases by >%dms", human(t.metric()), t.MaxIncrease.Milliseconds())
}

// Validate reports a negative MaxIncrease or MinSamples.
func (t LatencyIncrease) Validate() error {
	if t.MaxIncrease < 0 {
		return fmt.Errorf("LatencyIncrease.MaxIncrease %v is negative: %w", t.MaxIncrease, ErrInvalid)
	}
	if t.MinSamples < 0 {
		return fmt.Errorf("LatencyIncrease.MinSamples %d is negative: %w", t.MinSamples, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs against the control, else the baseline. It is
// inconclusive when the metric has no data or there is nothing to compare
// it with.
func (t LatencyIncrease) Evaluate(obs, baseline monitor.Observation) Result {
	var (
		arr [160]byte
		r   Result
	)
	b := t.eval(&r, arr[:0], &obs, &baseline, false)
	return finish(&r, t.Name(), b)
}

func (t LatencyIncrease) eval(r *Result, b []byte, obs, baseline *monitor.Observation, quiet bool) []byte {
	name := t.metric()
	m := obs.Metric(name)
	if !m.HasData() {
		return noData(r, b, name)
	}
	ref, label, n, ok := reference(&m, baseline, name)
	if !ok {
		b = append(b, human(name)...)
		b = append(b, ' ')
		return noReference(r, appendMs(b, m.Value), name, m)
	}
	limit := ref + t.MaxIncrease.Seconds()
	*r = Result{Metric: name, Observed: m.Value, Baseline: ref, Reference: label, Threshold: limit, Samples: n}
	if quiet && n >= t.MinSamples && m.Value <= limit {
		return b // passes: no reason wanted
	}
	if n < t.MinSamples {
		b = append(b, human(name)...)
		b = append(b, ' ')
		b = appendMs(b, m.Value)
		b = append(b, " not judged: "...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " samples, fewer than the "...)
		b = strconv.AppendInt(b, int64(t.MinSamples), 10)
		b = append(b, " a quantile needs"...)
		return appendSamples(b, m)
	}
	b = append(b, human(name)...)
	b = append(b, ' ')
	b = appendMs(b, m.Value)
	b = append(b, " vs "...)
	b = append(b, label...)
	b = append(b, ' ')
	b = appendMs(b, ref)
	b = append(b, " ("...)
	d := math.Round((m.Value - ref) * 1000)
	if d == 0 {
		d = 0 // not -0: "+0 ms"
	}
	if d >= 0 {
		b = append(b, '+')
	}
	b = strconv.AppendFloat(b, d, 'f', 0, 64)
	b = append(b, " ms)"...)
	if m.Value > limit {
		r.Outcome = Fail
		b = append(b, " > +"...)
	} else {
		b = append(b, " within +"...)
	}
	b = strconv.AppendInt(b, t.MaxIncrease.Milliseconds(), 10)
	b = append(b, " ms"...)
	return appendSamples(b, m)
}

// appendMs formats seconds as whole milliseconds: "120 ms".
func appendMs(b []byte, sec float64) []byte {
	b = strconv.AppendFloat(b, sec*1000, 'f', 0, 64)
	return append(b, " ms"...)
}
