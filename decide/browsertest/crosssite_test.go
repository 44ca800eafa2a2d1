package browsertest

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// A page on another site that a logged-in person visits posts the approval
// form to the decision page — even with the form's own token, as if it had
// leaked. Chromium says the post is cross-site (Sec-Fetch-Site) and leaves
// the SameSite=Strict cookie out; the page refuses it, and the release still
// waits.
func TestAnotherSiteCannotDecideForAPersonLoggedIn(t *testing.T) {
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
		deploy.WithWaiver(deploy.FridayDeploy, "a test, at any hour"),
	)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	id, err := runner.Start(runCtx, deploy.Release{Service: "shop", Version: "v2", PreviousVersion: "v1", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { _, err := runner.Resume(runCtx, id); ran <- err }()
	defer func() { stop(); <-ran }()

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
	srv := httptest.NewServer(mux) // on 127.0.0.1
	defer srv.Close()

	waitFor(t, ctx, store, id, "waited for the approval of its first step", func(r *state.Record) bool {
		return r.Waiting != nil && r.Waiting.Kind == state.WaitApproval
	})
	login(t, ctx, srv.URL+"/deploys", "alice-token-0123456789")
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/deploys/releases/"+id),
		chromedp.WaitVisible(css(`#approve`)),
	))
	leaked, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`form[action$="/approve"] input[name="token"]`), "value"))
	if err != nil || leaked.Value == "" {
		t.Fatalf("reading the approval form's token: %v %+v", err, leaked)
	}

	// The other site: localhost is another site than 127.0.0.1.
	action := srv.URL + "/deploys/releases/" + id + "/approve"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title>
<form method="post" action="%s"><input type="hidden" name="step" value="0"><input type="hidden" name="token" value="%s">
<button id="prize">Claim your prize</button></form>`, html.EscapeString(action), html.EscapeString(leaked.Value))
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(evilURL),
		chromedp.WaitVisible(css(`#prize`)),
		chromedp.Click(css(`#prize`)),
		chromedp.WaitVisible(css(`#message`)),
	))
	if msg := text(t, ctx, `#message`); !strings.Contains(msg, "cross-origin request refused") {
		t.Errorf("the cross-site post was answered %q", msg)
	}
	rec, err := store.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Decisions) != 0 || rec.Waiting == nil || rec.Waiting.Kind != state.WaitApproval {
		t.Errorf("after the cross-site post: decisions %+v, waiting %+v", rec.Decisions, rec.Waiting)
	}
}
