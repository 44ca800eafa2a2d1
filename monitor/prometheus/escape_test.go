package prometheus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

func seenFor(t *testing.T, query string, tg monitor.Target) (string, error) {
	t.Helper()
	f := &fakeAPI{answer: map[string]model.Value{}}
	src, err := prometheus.New(f, []prometheus.Query{{Metric: "m", Query: query}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Observe(context.Background(), tg)
	if len(f.seen) == 0 {
		return "", err
	}
	return f.seen[0], err
}

// A version `v2",version=~".*` rewrote the selector to match every version,
// hiding the canary from its own judge (issue 12).
func TestQueryTemplateEscapesReleaseFields(t *testing.T) {
	tg := rel
	tg.Version = `v2",version=~".*`
	tg.Labels = map[string]string{"team": `a'} or vector(1) #`}
	got, err := seenFor(t, `err{version="{{.Version}}",team='{{.Labels.team}}'}`, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := `err{version="v2\",version=~\".*",team='a\'} or vector(1) #'}`
	if got != want {
		t.Errorf("query = %s\nwant    %s", got, want)
	}
	if skeleton(got) != `err{version="",team=""}` {
		t.Errorf("the fields changed the query's structure: %s", skeleton(got))
	}
}

func TestQueryTemplateRegexFunction(t *testing.T) {
	tg := rel
	tg.Version = "1.2.3+build"
	got, err := seenFor(t, `err{version=~"{{regex .Version}}|{{.PreviousVersion}}"}`, tg)
	if err != nil {
		t.Fatal(err)
	}
	if want := `err{version=~"1\\.2\\.3\\+build|v1"}`; got != want {
		t.Errorf("query = %s, want %s", got, want)
	}
}

func TestQueryTemplateRefusesBacktick(t *testing.T) {
	tg := rel
	tg.Service = "a`} or vector(1) #"
	if _, err := seenFor(t, "err{svc=`{{.Service}}`}", tg); err == nil || !strings.Contains(err.Error(), "backtick") {
		t.Errorf("err = %v, want a refused backtick", err)
	}
}

// skeleton returns q with the content of every string literal removed, and
// "" for a query whose strings do not end.
func skeleton(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '"' && c != '\'' && c != '`' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for ; j < len(q) && q[j] != c; j++ {
			if q[j] == '\\' && c != '`' {
				j++
			}
		}
		if j >= len(q) {
			return ""
		}
		b.WriteString(`""`)
		i = j
	}
	return b.String()
}

// FuzzQueryTemplate renders a query with any release fields: the fields
// stay inside their string literals.
func FuzzQueryTemplate(f *testing.F) {
	f.Add("checkout", `v2",version=~".*`, "prod", "a'b", "x\\")
	f.Add("s\n", "v`", "\x00", `\"`, "é\u2028")
	f.Fuzz(func(t *testing.T, service, version, env, label, step string) {
		fa := &fakeAPI{answer: map[string]model.Value{}}
		src, err := prometheus.New(fa, []prometheus.Query{{Metric: "m",
			Query: `x{s="{{.Service}}",v='{{.Version}}',e="{{.Environment}}",l="{{.Labels.k}}",st="{{.Step}}"}`}})
		if err != nil {
			t.Fatal(err)
		}
		tg := monitor.Target{Service: service, Version: version, Environment: env, Step: step, Phase: "bake", Labels: map[string]string{"k": label}}
		if _, err := src.Observe(context.Background(), tg); err != nil || len(fa.seen) == 0 {
			return // refused (a backtick)
		}
		if got := skeleton(fa.seen[0]); got != `x{s="",v="",e="",l="",st=""}` {
			t.Fatalf("query %s has the structure %s", fa.seen[0], got)
		}
	})
}
