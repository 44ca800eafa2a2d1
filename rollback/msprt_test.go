package rollback

import (
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// reference holds the values testdata/msprt_reference.py computed once,
// independently of this package (50-digit arithmetic, mpmath).
type reference_ struct {
	Grid      int `json:"grid"`
	Sequences []struct {
		Name     string  `json:"name"`
		Catch    float64 `json:"catch"`
		Tolerate float64 `json:"tolerate"`
		Alpha    float64 `json:"alpha"`
		Baseline *struct {
			N int `json:"n"`
			X int `json:"x"`
		} `json:"baseline"`
		Looks []struct {
			Window int     `json:"window"`
			N1     float64 `json:"n1"`
			X1     float64 `json:"x1"`
			N0     float64 `json:"n0"`
			X0     float64 `json:"x0"`
		} `json:"looks"`
		PGrid []float64 `json:"p_grid"`
		PCont []float64 `json:"p_cont"`
	} `json:"sequences"`
	NormalLimit []struct {
		X1, M1, X0, M0  float64
		Catch, Tolerate float64
		D, V            float64
		Exact           float64 `json:"log_lambda_exact"`
		Normal          float64 `json:"log_lambda_normal"`
	} `json:"normal_limit"`
	SampleSize []struct {
		Base, Rise, Alpha, Power float64
		Ratio                    any
		N                        float64
	} `json:"sample_size"`
	Detectable []struct {
		N, Base, Alpha, Power float64
		Ratio                 any
		Rise                  float64
	} `json:"detectable"`
	UpperBound []struct {
		X, N int
		A, P float64
	} `json:"upper_bound"`
}

func loadReference(t *testing.T) reference_ {
	t.Helper()
	b, err := os.ReadFile("testdata/msprt_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference_
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Grid != msprtGrid {
		t.Fatalf("the reference was computed for a %d-point grid, the code has %d: rerun testdata/msprt_reference.py", ref.Grid, msprtGrid)
	}
	return ref
}

func ratio(v any) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	return math.Inf(1)
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

// TestSequentialMatchesReference feeds each reference release's looks
// through Sequential — as Policy.Judge would, state and all — and checks the
// always-valid p-value after every look against the independent
// computation of the same discrete mixture (to 1e-9) and against the
// continuous half-normal mixture the grid stands for (to 1e-3).
func TestSequentialMatchesReference(t *testing.T) {
	ref := loadReference(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range ref.Sequences {
		t.Run(s.Name, func(t *testing.T) {
			trig := Sequential{Catch: s.Catch, Tolerate: s.Tolerate, Alpha: s.Alpha}
			var base monitor.Observation
			if s.Baseline != nil {
				base.Set(monitor.ErrorRate, monitor.Rate(float64(s.Baseline.X)/float64(s.Baseline.N), s.Baseline.N))
			}
			var state []byte
			for i, lk := range s.Looks {
				obs := monitor.Observation{Since: t0.Add(time.Duration(lk.Window) * time.Hour)}
				m := monitor.Metric{Value: lk.X1 / lk.N1, Samples: int(lk.N1), Counted: true, Control: math.NaN()}
				if lk.N0 > 0 {
					m.Control, m.ControlSamples = lk.X0/lk.N0, int(lk.N0)
				}
				obs.Set(monitor.ErrorRate, m)
				r, next := trig.EvaluateState(state, obs, base)
				state = next
				var st seqState
				if !st.decode(state) {
					t.Fatal("cannot decode the state")
				}
				if !near(st.P, s.PGrid[i], 1e-9) {
					t.Errorf("look %d: p = %.12g, the reference's grid %.12g (%s)", i, st.P, s.PGrid[i], r.Reason)
				}
				if !near(st.P, s.PCont[i], 1e-3) {
					t.Errorf("look %d: p = %.12g, the continuous mixture %.12g", i, st.P, s.PCont[i])
				}
			}
		})
	}
}

// TestMSPRTNormalLimit checks the binomial mixture against the closed form
// of the one-sided normal mSPRT (Johari et al.) as the counts grow at a
// fixed z of 3: the reference's continuous mixture approaches the closed
// form computed here, and the grid matches the continuous mixture while
// the likelihood's peak spans at least two of its cells (sd of the log
// ratio >= 2 cells; with more errors the grid is a discrete prior, as valid
// but no longer close to the continuous one).
func TestMSPRTNormalLimit(t *testing.T) {
	ref := loadReference(t)
	prev := math.Inf(1)
	for i, c := range ref.NormalLimit {
		tau := tauFor(c.Catch, c.Tolerate)
		closed := normalMSPRT(c.D, c.V, tau)
		if !near(closed, c.Normal, 1e-9) {
			t.Errorf("case %d: normalMSPRT = %.12g, reference %.12g", i, closed, c.Normal)
		}
		if cell := msprtSpan * tau / msprtGrid; math.Sqrt(c.V) >= 2*cell {
			mix := newMixture(tau)
			ll := make([]float64, msprtGrid)
			mix.addControl(ll, c.X1, c.M1, c.X0, c.M0, 1+c.Tolerate)
			if got := mix.logLambda(ll); !near(got, c.Exact, 2e-3) {
				t.Errorf("case %d: the grid's log Λ = %.6g, the reference's continuous mixture %.6g", i, got, c.Exact)
			}
		}
		if z := c.D / math.Sqrt(c.V); math.Abs(z-3) < 1e-6 {
			gap := math.Abs(c.Exact - closed)
			if gap >= prev {
				t.Errorf("case %d (%.0f errors): gap to the normal limit %.3g did not shrink from %.3g", i, c.X0, gap, prev)
			}
			prev = gap
		}
	}
	if prev > 0.02 {
		t.Errorf("with the most errors, log Λ is %.3g from the normal limit (want < 0.02)", prev)
	}
}

// TestSampleSizeMatchesReference checks the closed-form sample size and
// its inverse against the reference, including the issue's ≈9,600 canary
// requests for +50 % on 0.3 % at 1 %.
func TestSampleSizeMatchesReference(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.SampleSize {
		if got := SampleSize(c.Base, c.Rise, c.Alpha, c.Power, ratio(c.Ratio)); !near(got, c.N, 1e-9) {
			t.Errorf("SampleSize(%v, %v, %v, %v, %v) = %.10g, reference %.10g", c.Base, c.Rise, c.Alpha, c.Power, c.Ratio, got, c.N)
		}
	}
	for _, c := range ref.Detectable {
		if got := Detectable(c.N, c.Base, c.Alpha, c.Power, ratio(c.Ratio)); !near(got, c.Rise, 1e-6) {
			t.Errorf("Detectable(%v, %v, %v, %v, %v) = %.8g, reference %.8g", c.N, c.Base, c.Alpha, c.Power, c.Ratio, got, c.Rise)
		}
	}
	if n := SampleSize(0.003, 0.5, 0.05, 0.8, 99); math.Round(n/100)*100 != 9600 {
		t.Errorf("+50 %% on 0.3 %% at 1 %%: %.0f requests, want ≈9,600", n)
	}
	for _, c := range ref.UpperBound {
		if got := upperBound(c.X, c.N, c.A); !near(got, c.P, 1e-9) {
			t.Errorf("upperBound(%d, %d, %v) = %.12g, reference %.12g", c.X, c.N, c.A, got, c.P)
		}
	}
}
