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
	"github.com/google/go-cmp/cmp"
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
func TestNotifierOutageLosesNoEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Healthy())
		h.rec.FailNext(5)
		start := time.Now()
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("Run: %v", err)
		}
		if got, want := time.Since(start), 110*time.Minute; got != want {
			t.Errorf("release took %v, want %v: a notifier outage must not delay it", got, want)
		}
		kinds := h.rec.Kinds()
		if kinds[0] != deploy.EventStarted || kinds[len(kinds)-1] != deploy.EventFinished {
			t.Errorf("events %v..%v", kinds[0], kinds[len(kinds)-1])
		}
		if rep.Pending != 0 {
			t.Errorf("%d events still pending", rep.Pending)
		}
	})
}

type permErr struct{}

func (permErr) Error() string { return "401 bad token" }

func (permErr) Temporary() bool { return false }

type badNotifier struct{ deploytest.Recorder }

func (*badNotifier) Validate() error { return errors.New("Webhook.URL is empty") }

func TestNotifierErrorsAndSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		attempts := 0
		perm := deploy.NotifierFunc(func(ctx context.Context, e deploy.Event) error {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			return permErr{}
		})
		h := newHarness(t, ramp(), deploytest.Healthy(), deploy.WithNotifiers(perm))
		rep, err := h.runner.Run(t.Context(), rel)
		events := h.rec.Events()
		// A refusing notifier keeps every event pending (it is retried at
		// the longest backoff until its configuration is fixed), and the
		// report says so instead of ticking "Stakeholders notified".
		if err != nil || rep.Pending != len(events) {
			t.Fatalf("err %v, pending %d, want %d", err, rep.Pending, len(events))
		}
		if max := 110/5 + 2; attempts < 2 || attempts > max {
			t.Errorf("a refusing notifier was tried %d times in a 110-minute release, want it retried at the longest backoff (5 min): 2 to %d", attempts, max)
		}
		md := rep.Markdown()
		if !strings.Contains(md, "NOT delivered") || strings.Contains(md, "[x] Stakeholders notified") {
			t.Errorf("the report does not say the events were not delivered:\n%s", md)
		}
		for i, e := range events {
			if e.Seq != i+1 {
				t.Fatalf("event %d (%s) has Seq %d", i, e.Kind, e.Seq)
			}
		}
		last := events[len(events)-1]
		if last.Kind != deploy.EventFinished || last.Duration != 110*time.Minute || len(last.FollowUps) == 0 {
			t.Errorf("finished event %+v", last)
		}
	})
	_, err := deploy.NewRunner(ramp(), deploy.WithNotifiers(&badNotifier{}))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "notifier 0") || !strings.Contains(err.Error(), "Webhook.URL is empty") {
		t.Errorf("NewRunner with a bad notifier: %v", err)
	}
}

// slowDown is a notifier error that asks to wait, like an HTTP 429 with
// Retry-After.
type slowDown struct{ wait time.Duration }

func (e slowDown) Error() string { return "429 Too Many Requests" }

func (e slowDown) Temporary() bool { return true }

func (e slowDown) RetryAfter() time.Duration { return e.wait }

// TestNotifierRetryAfter: the outbox waits as long as the notifier's error
// asks (RetryAfter), not only its own backoff, and still delivers.
func TestNotifierRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var attempts []time.Duration
		start := time.Now()
		n := deploy.NotifierFunc(func(ctx context.Context, e deploy.Event) error {
			if e.Kind != deploy.EventStarted {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, time.Since(start))
			if len(attempts) == 1 {
				return slowDown{3 * time.Minute}
			}
			return nil
		})
		h := newHarness(t, ramp(), deploytest.Healthy(), deploy.WithNotifiers(n))
		if _, err := h.runner.Run(t.Context(), rel); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]time.Duration{0, 3 * time.Minute}, attempts); diff != "" {
			t.Errorf("attempts to deliver the start event (-want +got):\n%s", diff)
		}
	})
}

// The report the notifiers get in the finished event is being delivered
// with it: it does not call its own events not delivered.
func TestFinishedEventReportDoesNotCountItselfUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &deploytest.Recorder{}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.1, 1)}
		rep, err := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(rec)).Run(t.Context(), rel)
		if err != nil || rep.Pending != 0 {
			t.Fatalf("err %v, pending %d", err, rep.Pending)
		}
		events := rec.Events()
		last := events[len(events)-1]
		if last.Kind != deploy.EventFinished || strings.Contains(last.Report, "NOT delivered") {
			t.Errorf("the finished event's report says its events were not delivered:\n%s", last.Report)
		}
	})
}
