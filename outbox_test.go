package deploy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// outage is a notifier that fails until up, then records what it gets.
type outage struct {
	deploytest.Recorder
	mu sync.Mutex
	up time.Time
}

func (o *outage) Name() string { return "slack" }

func (o *outage) Notify(ctx context.Context, e deploy.Event) error {
	o.mu.Lock()
	up := o.up
	o.mu.Unlock()
	if time.Now().Before(up) {
		return errors.New("503 Service Unavailable")
	}
	return o.Recorder.Notify(ctx, e)
}

func TestNotifierOutageLongerThanTheReleaseLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &outage{up: time.Now().Add(10 * time.Minute)}
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.1, 1)}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(n))
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("err %v, status %s", err, rep.Status)
		}
		if rep.Pending == 0 || len(rep.Notifications) == 0 || !strings.Contains(rep.Markdown(), "NOT delivered to slack") {
			t.Fatalf("pending %d, notifications %q: the release ended during the outage, its events must show as not delivered", rep.Pending, rep.Notifications)
		}
		if strings.Contains(rep.Markdown(), "[x] Stakeholders notified") {
			t.Error("stakeholders ticked as notified during the outage")
		}
		// The outage ends; Resume delivers every event, once, in order.
		time.Sleep(10 * time.Minute)
		rep, err = r.Resume(t.Context(), rep.ID)
		if err != nil || rep.Pending != 0 || len(rep.Notifications) != 0 {
			t.Fatalf("after the outage: err %v, pending %d, %q", err, rep.Pending, rep.Notifications)
		}
		events := n.Events()
		for i, e := range events {
			if e.Seq != i+1 {
				t.Fatalf("event %d has Seq %d: lost or repeated", i, e.Seq)
			}
		}
		if len(events) == 0 || events[len(events)-1].Kind != deploy.EventFinished {
			t.Errorf("the finished event was not delivered: %d events", len(events))
		}
		if !strings.Contains(rep.Markdown(), "[x] Stakeholders notified") {
			t.Errorf("stakeholders not ticked once every event was delivered:\n%s", rep.Markdown())
		}
	})
}

func TestExpiredNotificationIsShownUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &outage{up: time.Now().Add(24 * time.Hour)}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.1, 1)}
		r := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(deploy.ExpireAfter(n, 2*time.Minute)))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		rep, err = r.Resume(t.Context(), rep.ID)
		if err != nil || rep.Pending != 0 || rep.Undelivered == 0 {
			t.Fatalf("err %v, pending %d, undelivered %d; want every event expired", err, rep.Pending, rep.Undelivered)
		}
		md := rep.Markdown()
		if !strings.Contains(md, "NOT delivered to slack") || !strings.Contains(md, "expired") || strings.Contains(md, "[x] Stakeholders notified") {
			t.Errorf("the report does not say the events expired undelivered:\n%s", md)
		}
	})
}
