package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deploykit/deploy"
)

// Weights is a custom deploy.Strategy: a canary on an nginx load balancer.
// Each step rewrites one upstream block, which nginx.conf includes, so that a
// share of the requests goes to the canary pool (running the new version):
//
//	# Written by deploykit for checkout v2: 25 % canary. Do not edit.
//	upstream checkout {
//	    server 10.0.0.1:8080 weight=75;
//	    server 10.0.0.2:8080 weight=25;
//	}
//
// Every write replaces the whole file atomically (write a temporary file, then
// rename it over the old one), so nginx never reads half a file and applying a
// step twice is harmless. Rollback writes 0 % canary.
type Weights struct {
	Dir      string // the directory nginx includes, e.g. /etc/nginx/upstreams
	Upstream string // the upstream's name, e.g. "checkout"
	Stable   string // the stable pool's address, e.g. "10.0.0.1:8080"
	Canary   string // the canary pool's address, running the new version
	// Steps are the canary's shares, each a whole percent, rising to 1;
	// nil means DefaultSteps.
	Steps []float64
	// Bake is how long monitors watch each step.
	Bake time.Duration
	// Reload makes the load balancer read the file, such as by running
	// "nginx -s reload". Nil means it watches the file itself.
	Reload func(ctx context.Context) error
}

// DefaultSteps are the canary's shares when Weights.Steps is nil.
var DefaultSteps = []float64{0.05, 0.25, 0.5, 1}

var _ deploy.Strategy = (*Weights)(nil)

// Name names the strategy in progress lines, reports and spans.
func (w *Weights) Name() string { return "nginx weights (upstream " + w.Upstream + ")" }

// Path is the file the strategy writes.
func (w *Weights) Path() string { return filepath.Join(w.Dir, w.Upstream+".conf") }

var upstreamName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate names every bad field and its value. deploy.NewRunner calls it, so
// a bad configuration is refused before any release starts.
func (w *Weights) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("Weights."+format, args...)) }
	if fi, err := os.Stat(w.Dir); err != nil || !fi.IsDir() {
		bad("Dir %q is not a directory", w.Dir)
	}
	if !upstreamName.MatchString(w.Upstream) {
		bad("Upstream %q is not an nginx upstream name (letters, digits, _ and -)", w.Upstream)
	}
	for _, f := range []struct{ name, addr string }{{"Stable", w.Stable}, {"Canary", w.Canary}} {
		if f.addr == "" || strings.ContainsAny(f.addr, " \t\r\n;{}#'\"") {
			bad("%s %q is not a server address such as 10.0.0.1:8080", f.name, f.addr)
		}
	}
	if w.Stable != "" && w.Stable == w.Canary {
		bad("Canary %q is the same server as Stable", w.Canary)
	}
	prev := 0.0
	for i, s := range w.steps() {
		switch {
		case !(s > 0 && s <= 1):
			bad("Steps[%d] %v is outside (0, 1]", i, s)
		case math.Abs(s*100-math.Round(s*100)) > 1e-9:
			bad("Steps[%d] %v is not a whole percent (nginx weights here are out of 100)", i, s)
		case s <= prev:
			bad("Steps[%d] %v does not go above the step before (%v)", i, s, prev)
		}
		prev = s
	}
	if s := w.steps(); len(s) == 0 || s[len(s)-1] != 1 {
		bad("Steps %v does not end at 1: the new version would never reach every user", w.steps())
	}
	if w.Bake < 0 {
		bad("Bake %v is negative", w.Bake)
	}
	return errors.Join(errs...)
}

func (w *Weights) steps() []float64 {
	if w.Steps == nil {
		return DefaultSteps
	}
	return w.Steps
}

// Plan returns one step per share, named "5%", "25%"…: the same steps for
// every call, as Resume needs.
func (w *Weights) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	var steps []deploy.Step
	for _, share := range w.steps() {
		pct := int(math.Round(share * 100))
		steps = append(steps, deploy.Step{
			Name: fmt.Sprintf("%d%%", pct), Exposure: float64(pct) / 100, Bake: w.Bake,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { return w.write(ctx, d, pct) },
		})
	}
	return steps, nil
}

// Rollback sends every request back to the stable pool. It may run again.
func (w *Weights) Rollback(ctx context.Context, d *deploy.Deployment) error {
	return w.write(ctx, d, 0)
}

// write replaces the file with pct % to the canary, then reloads.
func (w *Weights) write(ctx context.Context, d *deploy.Deployment, pct int) error {
	server := func(addr string, weight int) string {
		if weight == 0 {
			return "    server " + addr + " down;\n" // nginx refuses weight=0
		}
		return fmt.Sprintf("    server %s weight=%d;\n", addr, weight)
	}
	conf := fmt.Sprintf("# Written by deploykit for %s %s: %d %% canary. Do not edit.\nupstream %s {\n%s%s}\n",
		d.Release.Service, d.Release.Version, pct, w.Upstream, server(w.Stable, 100-pct), server(w.Canary, pct))

	tmp, err := os.CreateTemp(w.Dir, "."+w.Upstream+".conf.tmp-*")
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.WriteString(conf)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), w.Path())
	}
	if err != nil {
		return fmt.Errorf("weights: writing %d %% canary to %s: %w", pct, w.Path(), err)
	}
	if w.Reload != nil {
		if err := w.Reload(ctx); err != nil {
			return fmt.Errorf("weights: reload after writing %d %% canary: %w", pct, err)
		}
	}
	return nil
}

// Current reads the canary's share back from the file: 0 when there is no
// file yet, as before the first release.
func (w *Weights) Current() (float64, error) {
	b, err := os.ReadFile(w.Path())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		if len(f) != 3 || f[0] != "server" || f[1] != w.Canary {
			continue
		}
		if f[2] == "down" {
			return 0, nil
		}
		if pct, err := strconv.Atoi(strings.TrimPrefix(f[2], "weight=")); err == nil {
			return float64(pct) / 100, nil
		}
	}
	return 0, fmt.Errorf("weights: %s has no line for the canary %s", w.Path(), w.Canary)
}
