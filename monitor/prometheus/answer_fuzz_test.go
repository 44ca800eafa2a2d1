package prometheus_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

// answer is a RoundTripper that gives every request the same answer.
type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(a.body)), Request: r}, nil
}

func apiAnswering(t testing.TB, status int, body []byte) v1.API {
	c, err := api.NewClient(api.Config{Address: "http://prometheus.invalid", RoundTripper: answer{status, body}})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

var answerSeeds = []string{
	`null`,
	`{"status":"success"}`,
	`{"status":"success","data":null}`,
	`{"status":"success","data":{"resultType":"vector","result":[null]}}`,
	`{"status":"success","data":{"resultType":"matrix","result":[null]}}`,
	`{"status":"success","data":{"resultType":"scalar","result":null}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}}`,
	`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]}}`,
	`{"status":"success","data":{"activeTargets":[null],"groups":[{"rules":[null]}]}}`,
	`{"status":"error","errorType":"bad_data","error":"parse error"}`,
	`[]`, `"x"`, `{}`,
}

// A Prometheus answer of null or {"status":"success"} dereferenced nil in
// prometheus.go (issue 12); every shape of answer must give data, no data or
// an error.
func TestMalformedAnswersNeverPanic(t *testing.T) {
	for _, body := range answerSeeds {
		observeAnswer(t, 200, []byte(body))
	}
}

func observeAnswer(t testing.TB, status int, body []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a := apiAnswering(t, status, body)
	src, err := prometheus.New(a, []prometheus.Query{
		{Metric: "instant", Query: `up{job="{{.Service}}"}`, Count: `count(up)`, Control: true},
		{Metric: "range", Query: `up{job="{{.Service}}"}`, Step: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	tg := monitor.Target{Service: "checkout", Version: "v2", PreviousVersion: "v1", Phase: "bake", Since: time.Now().Add(-time.Minute)}
	if o, err := src.Observe(ctx, tg); err == nil {
		for _, name := range []string{"instant", "range"} {
			if m := o.Metric(name); m.Samples < 0 {
				t.Errorf("%s: negative samples in %+v", name, m)
			}
		}
	}
	_, _ = prometheus.Monitoring{API: a}.Confirm(ctx, "checkout")
}

// FuzzAnswer gives the source and the monitoring check any answer from
// "Prometheus"; none may panic.
func FuzzAnswer(f *testing.F) {
	for _, s := range answerSeeds {
		f.Add(200, []byte(s))
	}
	f.Add(422, []byte(`{"status":"error","errorType":"execution"}`))
	f.Add(503, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			status = 200
		}
		observeAnswer(t, status, body)
	})
}
