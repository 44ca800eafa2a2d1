package hook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/monitor"
)

var target = monitor.Target{DeploymentID: "podinfo-v2-1", Service: "podinfo", Version: "v2", Environment: "test", Stage: "test", Step: "canary", Phase: "bake"}

// TestCallAgainstARealServer posts through a real socket to a
// flagger-loadtester-like server: Flagger's payload and headers, an answer
// read back.
func TestCallAgainstARealServer(t *testing.T) {
	lt := &loadtester{}
	srv := httptest.NewServer(lt)
	defer srv.Close()
	h := &hook.Rollout{Webhook: hook.Webhook{Name: "load-test", URL: srv.URL + "/", Header: http.Header{"Authorization": {"Bearer s3cr3t-token"}},
		Metadata: map[string]string{"type": "cmd", "cmd": "hey -z 1m http://podinfo-canary.test:9898/"}}}
	obs, err := h.Observe(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Checks) != 1 || !obs.Checks[0].OK || obs.Checks[0].Name != "rollout load-test" || !strings.Contains(obs.Checks[0].Detail, "200 OK: Task started") {
		t.Errorf("checks %+v", obs.Checks)
	}
	calls := lt.Calls("/")
	if len(calls) != 1 || calls[0].Payload.Checksum != hook.Checksum("podinfo-v2-1", "podinfo", "v2", "test") {
		t.Errorf("calls %+v", calls)
	}
}

// TestOnly200To202IsYes follows Flagger's controller, which fails a call on
// any status above 202.
func TestOnly200To202IsYes(t *testing.T) {
	for status, want := range map[int]bool{200: true, 201: true, 202: true, 204: false, 302: false, 403: false, 500: false} {
		h := hook.Webhook{URL: "http://receiver/", Client: &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Body: http.NoBody, Request: r}, nil
		})}}
		if got := h.Call(t.Context(), hook.Payload{}).OK(); got != want {
			t.Errorf("status %d: OK %v, want %v", status, got, want)
		}
	}
}

// TestCallIsBoundedAndCannotPanic: a receiver that never answers is a
// failed check after the timeout, even through a client that ignores its
// context; a client that panics is an answer with an error.
func TestCallIsBoundedAndCannotPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		stuck := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			<-release // ignores the request's context
			return nil, errors.New("released")
		})}
		h := &hook.PreRollout{Webhook: hook.Webhook{Name: "helm test", URL: "http://flagger-helmtester.kube-system/", Timeout: 3 * time.Minute, Client: stuck}}
		start := time.Now()
		obs, err := h.Observe(t.Context(), target)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Minute {
			t.Errorf("returned after %v, want the 3m timeout", d)
		}
		if c := obs.Checks[0]; c.OK || !strings.Contains(c.Detail, "no answer within the timeout 3m0s") {
			t.Errorf("check %+v", c)
		}
	})
	panicky := &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) { panic("transport bug") })}
	a := (&hook.Webhook{URL: "http://receiver/", Client: panicky}).Call(t.Context(), hook.Payload{})
	if a.OK() || a.Err == nil || !strings.Contains(a.Err.Error(), "panicked: transport bug") {
		t.Errorf("answer %+v", a)
	}
}

// TestSecretsNeverShow: the URL's credentials and query values and the
// headers' credentials are masked in answers, checks and gate reasons, even
// when the receiver echoes them.
func TestSecretsNeverShow(t *testing.T) {
	echo := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 403, Request: r,
			Body: io.NopCloser(strings.NewReader("denied " + r.URL.String() + " " + r.Header.Get("X-Api-Key")))}, nil
	})}
	down := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("dial " + r.URL.String() + ": connection refused")
	})}
	for _, c := range []*http.Client{echo, down} {
		w := hook.Webhook{URL: "https://bob:pa55word@gate.example/check?token=t0ps3cret", Header: http.Header{"X-Api-Key": {"k3y-v4lue"}}, Client: c}
		h := &hook.Confirm{Type: hook.TypeConfirmPromotion, Webhook: w}
		err := h.Check(context.Background(), &deploy.Deployment{ID: "x", Release: deploy.Release{Service: "podinfo", Version: "v2"}})
		obs, _ := (&hook.Rollout{Webhook: w}).Observe(context.Background(), target)
		for _, text := range []string{err.Error(), obs.Checks[0].Detail, h.Name()} {
			for _, secret := range []string{"pa55word", "t0ps3cret", "k3y-v4lue"} {
				if strings.Contains(text, secret) {
					t.Errorf("%q shows %s", text, secret)
				}
			}
		}
	}
}

// TestHooksOfTheAnalysisSkipOtherPhases: nothing is deployed at the
// baseline, the analysis is over in verification, and a rollback hook that
// still says yes must not fail the rollback's verification.
func TestHooksOfTheAnalysisSkipOtherPhases(t *testing.T) {
	lt := &loadtester{}
	lt.AskRollback("podinfo.test")
	w := hook.Webhook{URL: "http://flagger-loadtester.test/rollback/check", Client: lt.Client(), Metadata: map[string]string{"cmd": "x"}}
	for _, src := range []monitor.Source{&hook.Rollback{Webhook: w}, &hook.Rollout{Webhook: w}, &hook.PreRollout{Webhook: w}} {
		for _, phase := range []string{"baseline", "verify", "rollback"} {
			tg := target
			tg.Phase = phase
			obs, err := src.Observe(t.Context(), tg)
			if err != nil || len(obs.Checks) != 0 {
				t.Errorf("%T in %s: %+v, %v", src, phase, obs, err)
			}
		}
	}
	if n := len(lt.calls); n != 0 {
		t.Errorf("%d calls outside the analysis", n)
	}
}

func TestInvalidWebhookIsAnError(t *testing.T) {
	for _, w := range []hook.Webhook{{}, {URL: "flagger-loadtester.test/"}, {URL: "http://x/", Timeout: -time.Second}} {
		if _, err := (&hook.Rollout{Webhook: w}).Observe(t.Context(), target); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", w, err)
		}
	}
}

// TestNewRunnerRefusesABadHook: the runner validates every hook before any
// release starts, naming the field and its value.
func TestNewRunnerRefusesABadHook(t *testing.T) {
	bad := hook.Webhook{Name: "load-test", URL: "flagger-loadtester.test/"}
	for _, opt := range []deploy.Option{
		deploy.WithMonitors(&hook.Rollout{Webhook: bad}),
		deploy.WithMonitors(&hook.PreRollout{Webhook: bad}),
		deploy.WithNotifiers(&hook.PostRollout{Webhook: bad}),
		deploy.WithNotifiers(&hook.Event{Webhook: bad}),
		deploy.WithApproval(&hook.Confirm{Type: hook.TypeConfirmPromotion, Webhook: bad}),
	} {
		_, err := deploy.NewRunner(canary(), opt, deploy.WithMonitors(deploytest.Healthy()))
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `URL "flagger-loadtester.test/" is not an http or https URL`) {
			t.Errorf("err = %v", err)
		}
	}
}

// TestAnUnnamedHookIsNamedByItsHost: a hook without a Name is named in a
// validation error as everywhere else, by its URL's host — not `hook ""`.
func TestAnUnnamedHookIsNamedByItsHost(t *testing.T) {
	for _, v := range []interface{ Validate() error }{
		&hook.Webhook{URL: "ftp://flagger-loadtester.test/"},
		&hook.Confirm{Webhook: hook.Webhook{URL: "http://flagger-loadtester.test/gate/check"}},
	} {
		err := v.Validate()
		if !errors.Is(err, deploy.ErrInvalid) || strings.Contains(err.Error(), `hook ""`) || !strings.Contains(err.Error(), `hook "flagger-loadtester.test"`) {
			t.Errorf("%T: err = %v, want it named by its host", v, err)
		}
	}
}

// A hook whose Timeout is longer than the runner's bound for its kind of
// call (Observe for monitors, Notify for notifiers, Check for the approval
// gate) would be cut short silently: NewRunner refuses it, naming the bound.
func TestAHookTimeoutLongerThanTheRunnersBoundIsRefused(t *testing.T) {
	long := hook.Webhook{Name: "load-test", URL: "http://flagger-loadtester.test/", Timeout: 3 * time.Minute}
	for _, tc := range []struct {
		opt  deploy.Option
		want string
	}{
		{deploy.WithMonitors(&hook.PreRollout{Webhook: long}), "Timeouts.Observe"},
		{deploy.WithNotifiers(&hook.PostRollout{Webhook: long}), "Timeouts.Notify"},
		{deploy.WithApproval(&hook.Confirm{Type: hook.TypeConfirmPromotion, Webhook: long}), "Timeouts.Check"},
	} {
		_, err := deploy.NewRunner(canary(), tc.opt, deploy.WithMonitors(deploytest.Healthy()))
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "3m0s") {
			t.Errorf("err = %v, want ErrInvalid naming %s", err, tc.want)
		}
	}
	if _, err := deploy.NewRunner(canary(), deploy.WithMonitors(&hook.PreRollout{Webhook: long}, deploytest.Healthy()),
		deploy.WithTimeouts(deploy.Timeouts{Observe: 4 * time.Minute})); err != nil {
		t.Errorf("with Observe raised: %v", err)
	}
}
