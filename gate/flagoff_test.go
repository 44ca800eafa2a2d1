package gate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

const flagKey = "new-checkout"

// newFlag serves flagKey at share through an isolated OpenFeature API.
func newFlag(t *testing.T, share float64) (*flags.Provider, *openfeature.Client) {
	t.Helper()
	p, err := flags.NewProvider(flags.BoolFlag(flagKey, share))
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return p, api.NewClient()
}

func TestFlagOff(t *testing.T) {
	d := &deploy.Deployment{ID: "rel-1"}
	off, offClient := newFlag(t, 0)
	five, fiveClient := newFlag(t, 0.05)
	cases := []struct {
		name string
		g    gate.FlagOff
		want string // "" passes
	}{
		{"off, client", gate.FlagOff{Flag: flagKey, Client: offClient}, ""},
		{"off, controller", gate.FlagOff{Flag: flagKey, Controller: off}, ""},
		{"off, both", gate.FlagOff{Flag: flagKey, Client: offClient, Controller: off}, ""},
		{"5 %, client", gate.FlagOff{Flag: flagKey, Client: fiveClient},
			`flag "new-checkout" is on for 101 of 2000 sampled targeting keys (5.05 %, first "deploykit-flagoff-rel-1-6"); turn it off before deploying dark`},
		{"5 %, controller", gate.FlagOff{Flag: flagKey, Controller: five},
			`flag "new-checkout" is on for 5 % of users; set it to 0 before deploying dark`},
		{"5 %, few samples", gate.FlagOff{Flag: flagKey, Client: fiveClient, Samples: 100},
			`flag "new-checkout" is on for 6 of 100 sampled targeting keys (6 %`},
		{"unknown, client", gate.FlagOff{Flag: "no-such-flag", Client: offClient},
			`flag "no-such-flag" does not exist: error code: FLAG_NOT_FOUND`},
		{"unknown, controller", gate.FlagOff{Flag: "no-such-flag", Controller: off},
			`flag "no-such-flag": cannot read its share: flags: flag not found`},
		{"no flag", gate.FlagOff{Client: offClient}, "deploy: invalid: gate.FlagOff: Flag is empty"},
		{"nothing to read", gate.FlagOff{Flag: flagKey}, `deploy: invalid: gate.FlagOff: neither Client nor Controller is set: nothing to read the flag "new-checkout" with`},
		{"negative samples", gate.FlagOff{Flag: flagKey, Client: offClient, Samples: -1}, "deploy: invalid: gate.FlagOff: Samples -1 is negative"},
		{"all wrong", gate.FlagOff{Samples: -2}, `deploy: invalid: gate.FlagOff: Flag is empty; neither Client nor Controller is set: nothing to read the flag "" with; Samples -2 is negative`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.g.Check(t.Context(), d)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Check = %v, want pass", err)
			case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
				t.Errorf("Check = %v, want an error starting %q", err, c.want)
			}
		})
	}
	if err := (gate.FlagOff{Flag: "x", Controller: five}).Check(t.Context(), d); !errors.Is(err, flags.ErrFlagNotFound) {
		t.Errorf("unknown flag via Controller: %v, want it to wrap flags.ErrFlagNotFound", err)
	}
	g := gate.FlagOff{Flag: flagKey, Client: offClient}
	if g.Name() != "flag-off:new-checkout" {
		t.Errorf("Name = %q", g.Name())
	}
	if diff := cmp.Diff([]deploy.Item{deploy.ItemFlagsConfigured}, g.ChecklistItems()); diff != "" {
		t.Errorf("ChecklistItems (-want +got):\n%s", diff)
	}
}

func TestFlagOffInRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		run := func(share float64) (*deploy.Report, error, *deploytest.Strategy) {
			p, client := newFlag(t, share)
			s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.5, 1)}
			r, err := deploy.NewRunner(s,
				deploy.WithStore(state.NewMemory()),
				deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithNotifiers(&deploytest.Recorder{}),
				deploy.WithSchedule(monitor.Schedule{}),
				deploy.WithTracerProvider(tp),
				deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"),
				deploy.WithGates(gate.FlagOff{Flag: flagKey, Client: client, Controller: p}))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
			return rep, err, s
		}

		rep, err, _ := run(0)
		if err != nil {
			t.Fatalf("Run with the flag off: %v", err)
		}
		var line *deploy.ChecklistLine
		for i := range rep.Checklist {
			if rep.Checklist[i].Item == deploy.ItemFlagsConfigured {
				line = &rep.Checklist[i]
			}
		}
		want := `gate flag-off:new-checkout: flag "new-checkout" share is 0 %; flag "new-checkout" off for all 2000 sampled targeting keys`
		if line == nil || !line.Done || line.Evidence != want {
			t.Errorf("checklist line for %q = %+v, want ticked with %q", deploy.ItemFlagsConfigured, line, want)
		}
		// The first evaluations are on the gate's span, through the
		// OpenTelemetry hook of go-sdk-contrib.
		events := 0
		for _, sp := range sr.Ended() {
			if sp.Name() != "deploy.gate" {
				continue
			}
			for _, e := range sp.Events() {
				if e.Name != "feature_flag.evaluation" {
					continue
				}
				events++
				for _, a := range e.Attributes {
					if a.Key == "feature_flag.key" && a.Value.AsString() != flagKey {
						t.Errorf("event feature_flag.key = %q", a.Value.AsString())
					}
				}
			}
		}
		if events != gate.DefaultFlagOffTraced {
			t.Errorf("%d feature_flag.evaluation events on the gate span, want %d", events, gate.DefaultFlagOffTraced)
		}
		if md := rep.Markdown(); !strings.Contains(md, "[x] "+string(deploy.ItemFlagsConfigured)) {
			t.Errorf("report does not tick %q:\n%s", deploy.ItemFlagsConfigured, md)
		}

		rep, err, s := run(0.05)
		if !errors.Is(err, deploy.ErrBlocked) || !strings.Contains(err.Error(), `flag "new-checkout" is on for 5 % of users`) {
			t.Errorf("Run with the flag at 5 %%: %v, want blocked with the reason", err)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("a blocked release applied %v", s.Applied())
		}
		if len(rep.Gates) != 1 || rep.Gates[0].Name != "flag-off:new-checkout" || rep.Gates[0].Passed {
			t.Errorf("gates %+v", rep.Gates)
		}
	})
}

func TestFlagOffValidatedBeforeAnyRelease(t *testing.T) {
	_, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)},
		deploy.WithStore(state.NewMemory()), deploy.WithGates(gate.FlagOff{Flag: flagKey}))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `gate.FlagOff: neither Client nor Controller is set`) {
		t.Errorf("NewRunner = %v, want ErrInvalid with FlagOff's reason", err)
	}
}
