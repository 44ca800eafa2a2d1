package prometheus_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

// fakeAPI answers queries from a table, keyed by the PromQL.
type fakeAPI struct {
	v1.API // nil: other methods panic
	mu     sync.Mutex
	seen   []string
	answer map[string]model.Value
	block  bool // wait for the context instead of answering
}

func (f *fakeAPI) lookup(ctx context.Context, q string) (model.Value, error) {
	f.mu.Lock()
	f.seen = append(f.seen, q)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	v, ok := f.answer[q]
	if !ok {
		return model.Vector{}, nil
	}
	return v, nil
}

func (f *fakeAPI) Query(ctx context.Context, q string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	v, err := f.lookup(ctx, q)
	return v, nil, nil, err
}

func (f *fakeAPI) QueryRange(ctx context.Context, q string, _ v1.Range, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	v, err := f.lookup(ctx, q)
	return v, nil, nil, err
}

func vec(vs ...float64) model.Vector {
	out := model.Vector{}
	for i, v := range vs {
		out = append(out, &model.Sample{Metric: model.Metric{"i": model.LabelValue(rune('a' + i))}, Value: model.SampleValue(v)})
	}
	return out
}

func series(vs ...float64) model.Matrix {
	s := &model.SampleStream{Metric: model.Metric{}}
	for i, v := range vs {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.Time(i * 1000), Value: model.SampleValue(v)})
	}
	return model.Matrix{s}
}

var rel = monitor.Target{
	Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "prod",
	Stage: "production", Step: "25%", Phase: "bake", Labels: map[string]string{"team": "payments"},
}

func TestTemplateAndControl(t *testing.T) {
	f := &fakeAPI{answer: map[string]model.Value{
		`err{svc="checkout",v="v2",env="prod",stage="production",step="25%",team="payments",track="canary"}[90s]`: vec(0.05),
		`err{svc="checkout",v="v1",env="prod",stage="production",step="25%",team="payments",track="stable"}[90s]`: vec(0.01),
		`n{v="v2"}[90s]`: &model.Scalar{Value: 400},
		`n{v="v1"}[90s]`: &model.Scalar{Value: 4000},
	}}
	src, err := prometheus.New(f, []prometheus.Query{{
		Metric:     monitor.ErrorRate,
		Query:      `err{svc="{{.Service}}",v="{{.Version}}",env="{{.Environment}}",stage="{{.Stage}}",step="{{.Step}}",team="{{.Labels.team}}",track="{{if .Control}}stable{{else}}canary{{end}}"}[{{.Window}}]`,
		Count:      `n{v="{{.Version}}"}[{{.Window}}]`,
		Control:    true,
		MinSamples: 100,
	}})
	if err != nil {
		t.Fatal(err)
	}
	tg := rel
	tg.Since = time.Now().Add(-89500 * time.Millisecond) // rounds up to 90s
	o, err := src.Observe(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	m := o.Metric(monitor.ErrorRate)
	if m.Value != 0.05 || m.Samples != 400 || m.Control != 0.01 || m.ControlSamples != 4000 || !m.Counted {
		t.Errorf("metric = %+v, seen queries %q; want the Count's 400 requests, counted", m, f.seen)
	}

	// Without a previous version there is no control.
	tg.PreviousVersion = ""
	o, _ = src.Observe(context.Background(), tg)
	if m := o.Metric(monitor.ErrorRate); m.HasControl() || !math.IsNaN(m.Control) || m.Value != 0.05 {
		t.Errorf("without PreviousVersion: %+v, want a value and no control", m)
	}
}

func TestNoData(t *testing.T) {
	f := &fakeAPI{answer: map[string]model.Value{
		"nan":         vec(math.NaN()),
		"inf":         vec(math.Inf(1)),
		"scalar_nan":  &model.Scalar{Value: model.SampleValue(math.NaN())},
		"zero":        vec(0),
		"few":         vec(0.5),
		"few_count":   vec(3),
		"range_nan":   series(math.NaN(), math.NaN()),
		"range_mixed": series(1, math.NaN(), 3),
	}}
	src, err := prometheus.New(f, []prometheus.Query{
		{Metric: "nan", Query: "nan"},
		{Metric: "inf", Query: "inf"},
		{Metric: "scalar_nan", Query: "scalar_nan"},
		{Metric: "empty", Query: "empty"},
		{Metric: "zero", Query: "zero"},
		{Metric: "few", Query: "few", Count: "few_count", MinSamples: 10},
		{Metric: "uncounted", Query: "few", Count: "empty"},
		{Metric: "range_nan", Query: "range_nan", Step: time.Second},
		{Metric: "range_mixed", Query: "range_mixed", Step: time.Second},
		{Metric: "range_short", Query: "range_mixed", Step: time.Second, MinSamples: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := src.Observe(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	// The points of a range query are not events: no significance test.
	if m := o.Metric("range_mixed"); !m.HasData() || m.Counted {
		t.Errorf("range_mixed = %+v, want data, not counted", m)
	}
	for _, name := range []string{"nan", "inf", "scalar_nan", "empty", "few", "uncounted", "range_nan", "range_short"} {
		if m := o.Metric(name); m.HasData() || m.Samples != 0 || !math.IsNaN(m.Value) {
			t.Errorf("%s = %+v, want no data", name, m)
		}
	}
	if m := o.Metric("zero"); m.Value != 0 || m.Samples != 1 {
		t.Errorf("zero = %+v, want 0 with 1 sample", m)
	}
	if m := o.Metric("range_mixed"); m.Value != 2 || m.Samples != 2 || len(m.Raw) != 2 {
		t.Errorf("range_mixed = %+v, want mean 2 of 2 finite points", m)
	}
}

func TestQueryErrors(t *testing.T) {
	f := &fakeAPI{answer: map[string]model.Value{
		"two":        vec(1, 2),
		"matrix":     series(1),
		"two_series": append(series(1), series(2)...),
		"ok":         vec(1),
	}}
	tests := []struct {
		q    prometheus.Query
		want string
	}{
		{prometheus.Query{Metric: "m", Query: "two"}, `prometheus: query m (two): gave 2 series ({i="a"}, …), want one: aggregate with sum, avg or max`},
		{prometheus.Query{Metric: "m", Query: "matrix"}, `prometheus: query m (matrix): gave a matrix, want a scalar or a vector`},
		{prometheus.Query{Metric: "m", Query: "two_series", Step: time.Second}, `prometheus: query m (two_series): gave 2 series`},
		{prometheus.Query{Metric: "m", Query: "ok", Count: "two"}, `prometheus: query m (two): Count: gave 2 series`},
	}
	for _, tt := range tests {
		src, err := prometheus.New(f, []prometheus.Query{tt.q})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Observe(context.Background(), rel); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%v: Observe error = %v, want %q", tt.q, err, tt.want)
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	f := &fakeAPI{block: true}
	src, err := prometheus.New(f, []prometheus.Query{{Metric: "slow", Query: "slow", Timeout: 20 * time.Millisecond}}, prometheus.WithTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = src.Observe(context.Background(), rel)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "query slow (slow)") {
		t.Errorf("Observe error = %v, want a deadline naming the query", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Observe took %v, want the 20ms query timeout to apply", d)
	}
}

func TestNewValidates(t *testing.T) {
	f := &fakeAPI{}
	tests := []struct {
		qs   []prometheus.Query
		want string
	}{
		{[]prometheus.Query{{Query: "up"}}, `prometheus: queries[0].Metric "" is empty`},
		{[]prometheus.Query{{Metric: "m", Query: " "}}, `prometheus: queries[0] (m).Query " " is empty`},
		{[]prometheus.Query{{Metric: "m", Query: "up{{"}}, `prometheus: queries[0] (m).Query "up{{"`},
		{[]prometheus.Query{{Metric: "m", Query: "{{.Nope}}"}}, `prometheus: queries[0] (m).Query "{{.Nope}}"`},
		{[]prometheus.Query{{Metric: "m", Query: "up", Step: -time.Second}}, `prometheus: queries[0] (m).Step -1s is negative`},
		{[]prometheus.Query{{Metric: "m", Query: "up", MinSamples: -1}}, `prometheus: queries[0] (m).MinSamples -1 is negative`},
		{[]prometheus.Query{{Metric: "m", Query: "up", Timeout: -1}}, `prometheus: queries[0] (m).Timeout -1ns is negative`},
		{[]prometheus.Query{{Metric: "m", Query: "up", Step: time.Second, Count: "n"}}, `prometheus: queries[0] (m).Count "n" is for instant queries, but Step is 1s`},
		{[]prometheus.Query{{Metric: "m", Query: "up", Count: "{{.X}}"}}, `prometheus: queries[0] (m).Count "{{.X}}"`},
		{[]prometheus.Query{{Metric: "m", Query: "up"}, {Metric: "m", Query: "up"}}, `prometheus: queries[1].Metric "m" is used twice`},
	}
	for _, tt := range tests {
		if _, err := prometheus.New(f, tt.qs); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%v) = %v, want %q", tt.qs, err, tt.want)
		}
	}
	if _, err := prometheus.New(nil, nil); err == nil {
		t.Error("New(nil API) succeeded")
	}
}

func TestDurationAndWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1s", time.Millisecond: "1s", time.Second: "1s", 1500 * time.Millisecond: "2s", 5 * time.Minute: "300s",
	} {
		if got := prometheus.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	src, _ := prometheus.New(&fakeAPI{}, nil, prometheus.WithDefaultWindow(2*time.Minute), nil)
	now := time.Now()
	if w := src.VarsFor(monitor.Target{}, now).Window; w != "120s" {
		t.Errorf("window with no Since = %q, want the default 120s", w)
	}
	if w := src.VarsFor(monitor.Target{Since: now.Add(time.Hour)}, now).Window; w != "120s" {
		t.Errorf("window with Since in the future = %q, want the default 120s", w)
	}
	if w := src.VarsFor(monitor.Target{Since: now.Add(-42 * time.Second)}, now).Window; w != "42s" {
		t.Errorf("window = %q, want 42s", w)
	}
}

// TestVersionFollowsThePhase: before the deploy (baseline) and after a
// rollback, users are on the previous version, so .Version is the previous
// version then and no control is measured; while steps bake and during
// verification it is the new one. .NewVersion is always the new one.
func TestVersionFollowsThePhase(t *testing.T) {
	f := &fakeAPI{answer: map[string]model.Value{
		`err{v="v1",new="v2"}`: vec(0.01),
		`err{v="v2",new="v2"}`: vec(0.05),
	}}
	src, err := prometheus.New(f, []prometheus.Query{{
		Metric: monitor.ErrorRate, Query: `err{v="{{.Version}}",new="{{.NewVersion}}"}`, Control: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		phase   string
		value   float64
		control bool
	}{
		{"baseline", 0.01, false},
		{"bake", 0.05, true},
		{"verify", 0.05, true},
		{"rollback", 0.01, false},
	} {
		tg := rel
		tg.Phase = tc.phase
		o, err := src.Observe(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		m := o.Metric(monitor.ErrorRate)
		if m.Value != tc.value || m.HasControl() != tc.control {
			t.Errorf("%s: %+v, want value %v, control %v", tc.phase, m, tc.value, tc.control)
		}
		if v := src.VarsFor(tg, time.Now()); v.NewVersion != "v2" {
			t.Errorf("%s: NewVersion %q", tc.phase, v.NewVersion)
		}
	}
	// Without a previous version, the new one is all there is to measure.
	tg := rel
	tg.Phase, tg.PreviousVersion = "baseline", ""
	if v := src.VarsFor(tg, time.Now()); v.Version != "v2" {
		t.Errorf("baseline without PreviousVersion: Version %q, want v2", v.Version)
	}
}
