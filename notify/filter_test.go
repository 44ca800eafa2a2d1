package notify_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/notify"
)

func TestOnly(t *testing.T) {
	evs := events()
	order := []string{"started", "step", "breach", "rollback", "rollback failed", "finished urgent"}
	for _, tc := range []struct {
		name string
		wrap func(deploy.Notifier) deploy.Notifier
		want []deploy.EventKind
	}{
		{"final", func(n deploy.Notifier) deploy.Notifier { return notify.Only(n, deploy.EventFinished) },
			[]deploy.EventKind{deploy.EventFinished}},
		{"started and rollback", func(n deploy.Notifier) deploy.Notifier {
			return notify.Only(n, deploy.EventStarted, deploy.EventRollback)
		}, []deploy.EventKind{deploy.EventStarted, deploy.EventRollback, deploy.EventRollback}},
		{"urgent", notify.OnlyUrgent, []deploy.EventKind{deploy.EventRollback, deploy.EventFinished}},
		{"none", func(n deploy.Notifier) deploy.Notifier { return notify.Only(n) }, []deploy.EventKind{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &deploytest.Recorder{}
			n := tc.wrap(rec)
			for _, k := range order {
				if err := n.Notify(context.Background(), evs[k]); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, rec.Kinds()); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterPassesErrors(t *testing.T) {
	rec := &deploytest.Recorder{}
	rec.FailNext(1)
	n := notify.Only(rec, deploy.EventStep)
	if err := n.Notify(context.Background(), events()["started"]); err != nil {
		t.Errorf("filtered-out event: %v, want nil", err)
	}
	if err := n.Notify(context.Background(), events()["step"]); err == nil {
		t.Error("the inner notifier's error was not returned")
	}
}

func TestFilterDelegates(t *testing.T) {
	type named interface{ Name() string }
	gh := notify.Only(&notify.GitHub{}, deploy.EventFinished)
	if got := gh.(named).Name(); got != "github" {
		t.Errorf("Name() = %q, want github", got)
	}
	if diff := cmp.Diff([]deploy.Item{deploy.ItemTicketUpdated}, gh.(deploy.Checklister).ChecklistItems()); diff != "" {
		t.Errorf("ChecklistItems (-want +got):\n%s", diff)
	}
	fn := notify.OnlyUrgent(deploy.NotifierFunc(func(context.Context, deploy.Event) error { return nil }))
	if got := fn.(named).Name(); got != "deploy.NotifierFunc" {
		t.Errorf("Name() of a func = %q, want its type", got)
	}
	if got := fn.(deploy.Checklister).ChecklistItems(); got != nil {
		t.Errorf("ChecklistItems of a non-Checklister = %v, want nil", got)
	}
	if err := gh.(interface{ Validate() error }).Validate(); err == nil {
		t.Error("Validate did not delegate to GitHub.Validate")
	}
	if err := (&notify.Filter{}).Notify(context.Background(), events()["step"]); err == nil {
		t.Error("nil Notifier: no error")
	}
}
