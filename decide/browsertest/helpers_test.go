package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploykit/deploy/state"
)

const chromium = "/usr/bin/chromium"

// browser starts a headless chromium for the test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("this test drives Debian's chromium, and %s is missing: apt-get install -y chromium (.ci/run installs it)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// Start the browser under a context without a time limit (a limit
	// would stop the browser), then bound what the test does.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor waits, in real time, until cond holds of release id's record.
func waitFor(t *testing.T, ctx context.Context, store state.Store, id string, what string, cond func(*state.Record) bool) *state.Record {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := store.Load(ctx, id)
		if err == nil && cond(rec) {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("release %s never %s: %v (last error %v)", id, what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// login goes to the page at base, is refused, follows the link to the
// login form, logs in with token and waits for the list.
func login(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css(`a[href$="/login"]`)),
		chromedp.Click(css(`a[href$="/login"]`)),
		chromedp.WaitVisible(css(`#token`)),
		chromedp.SendKeys(css(`#token`), token),
		chromedp.Click(css(`#login`)),
		chromedp.WaitVisible(css(`#releases`)),
	))
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("in the browser: %v", err)
	}
}

// text returns the visible text of the element sel selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	if err != nil {
		t.Fatalf("in the browser, reading %s: %v", sel, err)
	}
	return s
}

// screenshot saves the page as name in $DECIDE_SCREENSHOTS, when set, for
// a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("DECIDE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}
