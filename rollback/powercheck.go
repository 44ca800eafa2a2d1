package rollback

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Traffic is what a power check assumes of the service: its requests per
// second and its error rate, declared (deploy.WithTraffic) or measured by
// the preflight baseline.
type Traffic struct {
	// RequestsPerSecond is the service's request rate, all versions.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// ErrorRate is its error rate, in [0, 1).
	ErrorRate float64 `json:"errorRate"`
	// Measured says the figures come from the preflight baseline.
	Measured bool `json:"measured,omitempty"`
}

// Exposure is one step of a plan as a power check sees it.
type Exposure struct {
	Name     string
	Exposure float64
	Bake     time.Duration
}

// StepPower is what a step lets a sequential trigger detect.
type StepPower struct {
	Step     string        `json:"step"`
	Exposure float64       `json:"exposure"`
	Bake     time.Duration `json:"bake"`
	// Requests are the canary requests the step sees; Cumulative those of
	// the step and the steps before it, which the sequential test adds up.
	Requests   float64 `json:"requests"`
	Cumulative float64 `json:"cumulative"`
	// Detectable is the smallest rise the cumulative requests can detect
	// with 80 % power (fixed-horizon closed form, [Detectable]); +Inf when
	// none can be.
	Detectable float64 `json:"detectable"`
	// Catches reports Detectable at or below the trigger's Catch.
	Catches bool `json:"catches"`
	// Line says it for people.
	Line string `json:"line"`
}

// Power is a power check of one sequential trigger on a plan.
type Power struct {
	Trigger string      `json:"trigger"`
	Catch   float64     `json:"catch"`
	Traffic Traffic     `json:"traffic"`
	Steps   []StepPower `json:"steps"`
	// Needed is the canary requests the catch needs (at the first step's
	// exposure).
	Needed float64 `json:"needed"`
	// OK reports that some step before full exposure can catch it.
	OK bool `json:"ok"`
	// Summary says whether it can, and what would.
	Summary string `json:"summary"`
}

// Power checks, for each [Sequential] trigger of p, what the steps of a
// plan let it detect at the given traffic: per step, the canary requests
// it sees and the smallest rise those and the earlier steps' can detect,
// against the rise the trigger is to catch. The figures are the
// closed-form fixed-horizon ones ([SampleSize], [Detectable]); the
// sequential test, which may stop at any look, needs somewhat more (about
// 1.4× for the median detection in the simulation of BENCHMARKS.md). Steps
// at full exposure are listed but do not count as "before full exposure".
func (p *Policy) Power(tr Traffic, steps []Exposure) []Power {
	var out []Power
	for _, t := range p.Triggers {
		s, ok := t.(Sequential)
		if !ok {
			if ps, isPtr := t.(*Sequential); isPtr && ps != nil {
				s, ok = *ps, true
			}
		}
		if !ok {
			continue
		}
		out = append(out, s.power(tr, steps))
	}
	return out
}

func (t Sequential) power(tr Traffic, steps []Exposure) Power {
	catch, alpha := t.catch(), t.alpha()
	pw := Power{Trigger: t.Name(), Catch: catch, Traffic: tr}
	base := tr.ErrorRate * (1 + t.Tolerate)
	ratio := func(e float64) float64 {
		if e >= 1 {
			return math.Inf(1)
		}
		return (1 - e) / e
	}
	cum := 0.0
	for i, s := range steps {
		n := tr.RequestsPerSecond * s.Exposure * s.Bake.Seconds()
		cum += n
		sp := StepPower{Step: s.Name, Exposure: s.Exposure, Bake: s.Bake, Requests: n, Cumulative: cum,
			Detectable: Detectable(cum, base, alpha, DefaultPower, ratio(s.Exposure))}
		sp.Catches = sp.Detectable <= catch
		if sp.Catches && s.Exposure < 1 {
			pw.OK = true
		}
		need := SampleSize(base, catch, alpha, DefaultPower, ratio(s.Exposure))
		if i == 0 {
			pw.Needed = need
		}
		var b strings.Builder
		fmt.Fprintf(&b, "step %s × %v sees ≈%s requests", pctShort(s.Exposure), s.Bake, count(n))
		if i > 0 {
			fmt.Fprintf(&b, " (≈%s with the steps before)", count(cum))
		}
		b.WriteString(": ")
		switch {
		case tr.ErrorRate <= 0:
			b.WriteString("no errors expected, so no rise of the error rate can be judged by its size")
		case math.IsInf(sp.Detectable, 1):
			fmt.Fprintf(&b, "it cannot catch any rise on %s", pctShort(tr.ErrorRate))
		case sp.Catches:
			fmt.Fprintf(&b, "it can catch +%s on %s, so +%s", pctShort(sp.Detectable), pctShort(tr.ErrorRate), pctShort(catch))
		default:
			fmt.Fprintf(&b, "it can catch +%s on %s, not +%s", pctShort(sp.Detectable), pctShort(tr.ErrorRate), pctShort(catch))
		}
		if !sp.Catches && tr.ErrorRate > 0 && !math.IsInf(need, 1) {
			fmt.Fprintf(&b, "; +%s needs ≈%s", pctShort(catch), count(need))
			var alts []string
			for _, e := range []float64{s.Exposure, nextExposure(steps, i)} {
				if e <= 0 || e >= 1 || (len(alts) > 0 && e == s.Exposure) {
					continue
				}
				nd := SampleSize(base, catch, alpha, DefaultPower, ratio(e))
				d := time.Duration(nd / (tr.RequestsPerSecond * e) * float64(time.Second)).Round(time.Minute)
				alts = append(alts, fmt.Sprintf("%v at %s", d, pctShort(e)))
			}
			if len(alts) > 0 {
				b.WriteString(": " + strings.Join(alts, " or "))
			}
		}
		sp.Line = b.String()
		pw.Steps = append(pw.Steps, sp)
	}
	src := "declared"
	if tr.Measured {
		src = "measured by the baseline"
	}
	if pw.OK {
		pw.Summary = fmt.Sprintf("%s can catch +%s before full exposure at %s req/s and %s errors (%s)", t.Name(), pctShort(catch), count(tr.RequestsPerSecond), pctShort(tr.ErrorRate), src)
	} else {
		pw.Summary = fmt.Sprintf("no step before full exposure can catch +%s with %s at %s req/s and %s errors (%s): lengthen the bakes or raise the early exposures", pctShort(catch), t.Name(), count(tr.RequestsPerSecond), pctShort(tr.ErrorRate), src)
	}
	return pw
}

// nextExposure returns the exposure of the step after i, 0 for none.
func nextExposure(steps []Exposure, i int) float64 {
	if i+1 < len(steps) {
		return steps[i+1].Exposure
	}
	return 0
}

// pctShort formats a fraction as a percentage with up to 2 significant
// decimals: 0.003 is "0.3 %", 1.58 is "158 %".
func pctShort(f float64) string {
	x := f * 100
	switch {
	case x >= 10:
		return strconv.FormatFloat(math.Round(x), 'f', -1, 64) + " %"
	case x >= 1:
		return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64) + " %"
	}
	return strconv.FormatFloat(x, 'g', 2, 64) + " %"
}

// count formats a count rounded to 2 significant digits with thousands
// separators: 9594.9 is "9,600".
func count(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "∞"
	}
	if f >= 100 {
		mag := math.Pow(10, math.Floor(math.Log10(f))-1)
		f = math.Round(f/mag) * mag
	}
	s := strconv.FormatFloat(math.Round(f), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
