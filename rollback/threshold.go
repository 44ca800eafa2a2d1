package rollback

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/deploykit/deploy/monitor"
)

// Threshold rolls back when a metric leaves an absolute range: CPU above 80 %,
// memory above 2 GiB, throughput below a floor. A bound that is NaN is not
// checked; the zero value of Min and Max are real bounds, so set the one you
// do not want to math.NaN() or use [Above] and [Below].
type Threshold struct {
	// Metric is the metric name; it is required.
	Metric string
	// Min is the lowest value that passes; NaN for no lower bound.
	Min float64
	// Max is the highest value that passes; NaN for no upper bound.
	Max float64
	// Critical makes a breach roll back at once, whatever the failure limit.
	Critical bool
}

// Above returns a Threshold that fails when metric exceeds max.
func Above(metric string, max float64) Threshold {
	return Threshold{Metric: metric, Min: math.NaN(), Max: max}
}

// Below returns a Threshold that fails when metric falls under min.
func Below(metric string, min float64) Threshold {
	return Threshold{Metric: metric, Min: min, Max: math.NaN()}
}

// Name returns "threshold:" and the metric name.
func (t Threshold) Name() string { return joinName(t.nameParts()) }

func (t Threshold) nameParts() (string, string) { return "threshold:", t.Metric }

// Condition describes the trigger.
func (t Threshold) Condition() string {
	var parts []string
	if !math.IsNaN(t.Max) {
		parts = append(parts, fmt.Sprintf("%s above %.4g", human(t.Metric), t.Max))
	}
	if !math.IsNaN(t.Min) {
		parts = append(parts, fmt.Sprintf("%s below %.4g", human(t.Metric), t.Min))
	}
	return strings.Join(parts, " or ")
}

// Validate reports an empty metric name, no bound, or Min > Max.
func (t Threshold) Validate() error {
	switch {
	case t.Metric == "":
		return fmt.Errorf("Threshold.Metric is empty: %w", ErrInvalid)
	case math.IsNaN(t.Min) && math.IsNaN(t.Max):
		return fmt.Errorf("Threshold for %q: Min and Max are both NaN, so nothing is checked: %w", t.Metric, ErrInvalid)
	case t.Min > t.Max:
		return fmt.Errorf("Threshold for %q: Min %v > Max %v: %w", t.Metric, t.Min, t.Max, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs; baseline is not used. A value on a bound passes.
func (t Threshold) Evaluate(obs, baseline monitor.Observation) Result {
	var (
		arr [160]byte
		r   Result
	)
	b := t.eval(&r, arr[:0], &obs, &baseline, false)
	return finish(&r, t.Name(), b)
}

func (t Threshold) eval(r *Result, b []byte, obs, _ *monitor.Observation, quiet bool) []byte {
	m := obs.Metric(t.Metric)
	if !m.HasData() {
		return noData(r, b, t.Metric)
	}
	*r = Result{Metric: t.Metric, Observed: m.Value, Baseline: math.NaN(), Samples: m.Samples, Critical: t.Critical}
	hasMax, hasMin := !math.IsNaN(t.Max), !math.IsNaN(t.Min)
	if quiet && !(hasMax && m.Value > t.Max) && !(hasMin && m.Value < t.Min) {
		// Passes: no reason wanted, the threshold as the reason would say.
		switch {
		case hasMax:
			r.Threshold = t.Max
		default:
			r.Threshold = t.Min
		}
		return b
	}
	b = append(b, human(t.Metric)...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, m.Value, 'g', 4, 64)
	switch {
	case hasMax && m.Value > t.Max:
		r.Outcome, r.Threshold = Fail, t.Max
		b = append(b, " > "...)
		b = strconv.AppendFloat(b, t.Max, 'g', 4, 64)
	case hasMin && m.Value < t.Min:
		r.Outcome, r.Threshold = Fail, t.Min
		b = append(b, " < "...)
		b = strconv.AppendFloat(b, t.Min, 'g', 4, 64)
	case hasMax && hasMin:
		r.Threshold = t.Max
		b = append(b, " within ["...)
		b = strconv.AppendFloat(b, t.Min, 'g', 4, 64)
		b = append(b, ", "...)
		b = strconv.AppendFloat(b, t.Max, 'g', 4, 64)
		b = append(b, ']')
	case hasMax:
		r.Threshold = t.Max
		b = append(b, " <= "...)
		b = strconv.AppendFloat(b, t.Max, 'g', 4, 64)
	default:
		r.Threshold = t.Min
		b = append(b, " >= "...)
		b = strconv.AppendFloat(b, t.Min, 'g', 4, 64)
	}
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(m.Samples), 10)
	b = append(b, " samples)"...)
	return b
}
