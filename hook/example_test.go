package hook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Example translates a Flagger canary with five webhooks — a pre-rollout
// acceptance test that fails once, a rollout load test, a promotion gate
// that says no twice, a rollback gate that never asks, and a post-rollout
// notification — and shows what a receiver written for Flagger saw.
func Example() {
	var (
		mu    sync.Mutex
		seen  = map[string][]string{} // path: phases, in order
		tries = map[string]int{}
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p hook.Payload // Flagger's CanaryWebhookPayload
		json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		defer mu.Unlock()
		seen[r.URL.Path] = append(seen[r.URL.Path], string(p.Phase))
		tries[r.URL.Path]++
		switch {
		case r.URL.Path == "/acceptance" && tries[r.URL.Path] == 1,
			r.URL.Path == "/gate/check" && tries[r.URL.Path] <= 2,
			r.URL.Path == "/rollback/check":
			http.Error(w, "Forbidden", http.StatusForbidden)
		}
	}))
	defer receiver.Close()
	webhook := func(name, path string) hook.Webhook {
		return hook.Webhook{Name: name, URL: receiver.URL + path, Metadata: map[string]string{"cmd": name}}
	}

	interval := 20 * time.Millisecond
	s := &deploytest.Strategy{Steps: []deploytest.StepSpec{
		{Name: "canary", Exposure: 0, Bake: interval}, // scaled up, no traffic: pre-rollout runs here
		{Name: "50%", Exposure: 0.5, Bake: interval},
		{Name: "100%", Exposure: 1, Bake: interval},
	}}
	c := &hook.Confirmations{Strategy: s, Hooks: []*hook.Confirm{
		{Type: hook.TypeConfirmPromotion, Webhook: webhook("promotion gate", "/gate/check"), Poll: interval},
	}}
	r, err := deploy.NewRunner(c, deploy.WithApproval(c), deploy.WithInterval(interval),
		deploy.WithMonitors(
			&hook.PreRollout{Webhook: webhook("acceptance test", "/acceptance")},
			&hook.Rollout{Webhook: webhook("load test", "/load")},
			&hook.Rollback{Webhook: webhook("rollback gate", "/rollback/check")},
			deploytest.Healthy()),
		deploy.WithRollbackPolicy(hook.Threshold(deploy.DefaultPolicy(), 10, interval)),
		deploy.WithNotifiers(&hook.PostRollout{Webhook: webhook("notify", "/notify")}),
		deploy.WithStore(state.NewMemory()), deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithWaiver(deploy.FridayDeploy, "example"))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background(), deploy.Release{Service: "podinfo", Version: "v2", Environment: "test"})
	fmt.Println(rep.Status, err)
	mu.Lock()
	defer mu.Unlock()
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Println(p, len(seen[p]), seen[p][0])
	}
	// Output:
	// succeeded <nil>
	// /acceptance 2 Progressing
	// /gate/check 3 Progressing
	// /load 6 Progressing
	// /notify 1 Succeeded
	// /rollback/check 6 Progressing
}
