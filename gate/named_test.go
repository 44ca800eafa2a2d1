package gate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

type namer interface{ Name() string }

func TestNamed(t *testing.T) {
	ci := &gate.CI{Owner: "o", Repo: "r"}
	g := gate.Named("ci-and-oncall", ci, deploy.ItemOnCallNotified, deploy.ItemTestsPassing)
	if got := g.(namer).Name(); got != "ci-and-oncall" {
		t.Errorf("Name() = %q", got)
	}
	// The inner gate's items come first, each item once.
	if diff := cmp.Diff([]deploy.Item{deploy.ItemTestsPassing, deploy.ItemOnCallNotified}, g.(deploy.Checklister).ChecklistItems()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if w, ok := g.(interface{ DeployWindow() bool }); !ok || w.DeployWindow() {
		t.Error("a named CI gate declares itself a deploy window")
	}
	w := gate.Named("berlin-hours", &gate.Window{Location: time.UTC})
	if !w.(interface{ DeployWindow() bool }).DeployWindow() {
		t.Error("a named Window does not declare itself a deploy window")
	}

	for _, c := range []struct {
		g    deploy.Gate
		want string
	}{
		{gate.Named(" ", ci), `gate.Named: name " " is empty`},
		{gate.Named("x", nil), `gate "x" is nil`},
		{gate.Named("x", ci, ""), "items[0] is empty"},
	} {
		err := c.g.Check(t.Context(), dep)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check() = %v, want ErrInvalid naming %q", err, c.want)
		}
	}
}

func ExampleNamed() {
	migrations := gate.Named("migrations-tested", gate.Func(func(ctx context.Context, d *deploy.Deployment) error {
		// Ask the migration tool whether the release's migrations ran on a
		// copy of production.
		if d.Release.Labels["migrations"] != "dry-run-ok" {
			return errors.New("migrations of " + d.Release.Version + " not tried on a production copy")
		}
		return nil
	}), deploy.ItemMigrationsTested)

	d := &deploy.Deployment{Release: deploy.Release{Service: "checkout", Version: "v2", Labels: map[string]string{"migrations": "dry-run-ok"}}}
	fmt.Println(migrations.(interface{ Name() string }).Name())
	fmt.Println(migrations.(deploy.Checklister).ChecklistItems())
	fmt.Println(migrations.Check(context.Background(), d))
	d.Release.Version, d.Release.Labels = "v3", nil
	fmt.Println(migrations.Check(context.Background(), d))
	// Output:
	// migrations-tested
	// [Database migrations tested (if applicable)]
	// <nil>
	// migrations of v3 not tried on a production copy
}
