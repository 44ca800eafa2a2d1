package monitor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/deploykit/deploy/monitor"
)

// ExampleWeb reads a value from a JSON status endpoint, as Argo Rollouts'
// web provider does with jsonPath "{$.data.ok}".
func ExampleWeb() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":{"ok":true,"errorRate":0.004}}`)
	}))
	defer srv.Close()

	for _, path := range []string{"{$.data.ok}", "{$.data.errorRate}", "{$.data.latency}"} {
		web := &monitor.Web{Metric: "status", URL: srv.URL + "/status?service={{.Service}}", JSONPath: path}
		obs, err := web.Observe(context.Background(), monitor.Target{Service: "checkout", Version: "v2"})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(path, obs.Metric("status").Value)
	}
	// Output:
	// {$.data.ok} 1
	// {$.data.errorRate} 0.004
	// monitor: web status: path {$.data.latency}: key "latency" not found in $.data (keys: "errorRate", "ok")
}

// ExampleJob runs a smoke-test command against the new version: exit 0
// passes, anything else fails, with the end of the output as the detail.
func ExampleJob() {
	job := &monitor.Job{Name: "smoke", Command: []string{"sh", "-c", `echo "GET /cart on $1: 502"; exit 2`, "sh", "{{.Version}}"}}
	obs, err := job.Observe(context.Background(), monitor.Target{Service: "checkout", Version: "v2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := obs.Checks[0]
	fmt.Println(c.Name, c.OK)
	// Output:
	// smoke false
}
