package strategy_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

var rel = deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"}

func newRunner(t *testing.T, s deploy.Strategy, m deploy.Monitor, opts ...deploy.Option) *deploy.Runner {
	t.Helper()
	base := []deploy.Option{
		deploy.WithStore(state.NewMemory()),
		deploy.WithMonitors(m),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithInterval(time.Minute),
		deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"),
	}
	r, err := deploy.NewRunner(s, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func attrOf(kvs []attribute.KeyValue, key attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}
