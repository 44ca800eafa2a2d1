package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// canary is a strategy of three steps: 10 % waiting for an approval by
// alice, 50 % pausing until promoted, 100 %. It records the exposure users
// get.
type canary struct {
	mu       sync.Mutex
	exposure float64
}

func (c *canary) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	apply := func(x float64) func(context.Context, *deploy.Deployment) error {
		return func(context.Context, *deploy.Deployment) error { c.set(x); return nil }
	}
	return []deploy.Step{
		{Name: "10%", Exposure: 0.1, Approval: true, Approvers: []string{"alice"}, Apply: apply(0.1)},
		{Name: "50%", Exposure: 0.5, Pause: &deploy.Pause{}, Apply: apply(0.5)},
		{Name: "100%", Exposure: 1, Apply: apply(1)},
	}, nil
}

func (c *canary) Rollback(ctx context.Context, d *deploy.Deployment) error { c.set(0); return nil }

func (c *canary) set(x float64) { c.mu.Lock(); c.exposure = x; c.mu.Unlock() }

// A person approves the first step of a release and, once it pauses at
// 50 %, promotes it, both from the page in chromium, through the runner's
// own decisions (Runner.Approve, Runner.Promote): each time the release
// moves on, the record says who decided, and the page shows it.
func TestAPersonApprovesThenPromotesInTheBrowser(t *testing.T) {
	ctx := browser(t)

	store, err := state.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runner, err := deploy.NewRunner(&canary{},
		deploy.WithStore(store),
		deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithInterval(50*time.Millisecond),
		deploy.WithBaselineWindow(50*time.Millisecond),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "watch", Duration: 200 * time.Millisecond, Interval: 50 * time.Millisecond}}}),
		deploy.WithWaiver(deploy.FridayDeploy, "a test, at any hour"),
	)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	id, err := runner.Start(runCtx, deploy.Release{Service: "shop", Version: "v2", PreviousVersion: "v1", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { _, err := runner.Resume(runCtx, id); ran <- err }()

	auth, err := decide.Tokens(map[string]string{"alice-token-0123456789": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := decide.New(runner, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/deploys/", http.StripPrefix("/deploys", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	waitFor(t, ctx, store, id, "waited for the approval of its first step", func(r *state.Record) bool {
		return r.Waiting != nil && r.Waiting.Kind == state.WaitApproval && r.Waiting.Step == 0
	})
	login(t, ctx, srv.URL+"/deploys", "alice-token-0123456789")
	must(t, chromedp.Do(ctx,
		chromedp.Click(css(`a.release`)),
		chromedp.WaitVisible(css(`#approve`)),
	))
	if w := text(t, ctx, `#waiting`); !strings.Contains(w, "approval at step 1 (10%)") {
		t.Errorf("before approving, the page says it waits for %q", w)
	}
	must(t, chromedp.Do(ctx, chromedp.Click(css(`#approve`)), chromedp.WaitVisible(css(`#outcome`))))
	if o := text(t, ctx, `#outcome`); !strings.Contains(o, "alice approved step 1 (10%) of release "+id) {
		t.Errorf("after approving, the page says %q", o)
	}

	rec := waitFor(t, ctx, store, id, "paused at 50% after the approval", func(r *state.Record) bool {
		return r.Waiting != nil && r.Waiting.Kind == state.WaitPause || r.Status.Final()
	})
	if rec.Waiting == nil || rec.Waiting.Step != 1 || rec.Exposure != 0.5 {
		t.Fatalf("after the approval: waiting %+v, exposure %v, status %s", rec.Waiting, rec.Exposure, rec.Status)
	}
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/deploys/releases/"+id),
		chromedp.WaitVisible(css(`#promote`)),
	))
	if w := text(t, ctx, `#waiting`); !strings.Contains(w, "pause at step 2 (50%)") {
		t.Errorf("before promoting, the page says it waits for %q", w)
	}
	must(t, chromedp.Do(ctx, chromedp.Click(css(`#promote`)), chromedp.WaitVisible(css(`#outcome`))))
	if o := text(t, ctx, `#outcome`); !strings.Contains(o, "alice promoted release "+id) {
		t.Errorf("after promoting, the page says %q", o)
	}

	rec = waitFor(t, ctx, store, id, "ended after the promotion", func(r *state.Record) bool { return r.Status.Final() })
	if err := <-ran; err != nil || rec.Status != state.Succeeded {
		t.Errorf("the release ended %s: %v", rec.Status, err)
	}
	var by []string
	for _, d := range rec.Decisions {
		by = append(by, string(d.Kind)+" by "+d.By)
	}
	if strings.Join(by, ", ") != "approve by alice, promote by alice" {
		t.Errorf("decisions recorded: %v", by)
	}
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/deploys/releases/"+id),
		chromedp.WaitVisible(css(`#decisions-taken`)),
	))
	if s := text(t, ctx, `#status`); s != string(state.Succeeded) {
		t.Errorf("the page shows status %q at the end", s)
	}
	if d := text(t, ctx, `#decisions-taken`); !strings.Contains(d, "promote") || !strings.Contains(d, "alice") {
		t.Errorf("the page shows the decisions %q", d)
	}
	screenshot(t, ctx, "promoted.png")
}
