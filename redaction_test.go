package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// leaky is a strategy whose second step fails with an error that names a
// URL with credentials and a token, as a careless HTTP client's error does.
type leaky struct{ *deploytest.Strategy }

func (s *leaky) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	steps[1].Apply = func(context.Context, *deploy.Deployment) error {
		return errors.New(`Post "https://deployer:hunter2@lb.internal/weights?token=s3cr3t-t0ken": connection refused`)
	}
	return steps, err
}

func TestErrorsOfUserCodeAreRedactedEverywhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		rep, err := openRunner(t, &leaky{ramp()}, store, deploy.WithMonitors(deploytest.Healthy())).Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrStepFailed) {
			t.Fatalf("err %v", err)
		}
		rec, _ := store.Load(t.Context(), rep.ID)
		saved, _ := json.Marshal(rec)
		for what, text := range map[string]string{"error": err.Error(), "report": rep.Markdown(), "record": string(saved)} {
			for _, secret := range []string{"hunter2", "s3cr3t-t0ken"} {
				if strings.Contains(text, secret) {
					t.Errorf("the %s shows the secret %q", what, secret)
				}
			}
		}
		if !strings.Contains(rep.Markdown(), "lb.internal") {
			t.Error("the report lost the host: redaction should keep what helps")
		}
	})
}

func TestHostileReleaseFieldsAreRefusedFirst(t *testing.T) {
	for _, c := range []struct {
		rel   deploy.Release
		field string
	}{
		{deploy.Release{Service: "..", Version: "v2"}, "Service"},
		{deploy.Release{Service: "shop\x00", Version: "v2"}, "Service"},
		{deploy.Release{Service: "shop", Version: "../v1"}, "Version"},
		{deploy.Release{Service: strings.Repeat("s", 300), Version: "v2"}, "Service"},
	} {
		store := state.NewMemory()
		s := ramp()
		_, err := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy())).Run(context.Background(), c.rel)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Run(%q/%q): %v, want ErrInvalid naming %s", c.rel.Service, c.rel.Version, err, c.field)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("steps applied for a refused release")
		}
	}
}
