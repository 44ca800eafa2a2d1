// Package demo is the scenery of the examples: an in-process HTTP service's
// request metrics, a load generator and simulated work, so that each example's
// main.go shows only what it demonstrates.
package demo

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// Serve serves h on a free loopback port and returns its base URL and a
// function that stops it.
func Serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// Start serves h (see Serve), sends it perSecond requests (see Load) to the
// URL followed by path() — the root when path is nil — runs each of
// background alongside, and returns after two seconds of traffic, so that a
// release's baseline has data. stop ends the traffic and the background
// work, waits for them, then stops the server.
func Start(ctx context.Context, h http.Handler, perSecond int, path func() string, background ...func(context.Context)) (url string, stop func(), err error) {
	url, stopServer, err := Serve(h)
	if err != nil {
		return "", nil, err
	}
	if path == nil {
		path = func() string { return "" }
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { Load(ctx, perSecond, func() string { return url + path() }) })
	for _, f := range background {
		wg.Go(func() { f(ctx) })
	}
	time.Sleep(2 * time.Second) // let the baseline fill
	return url, func() { cancel(); wg.Wait(); stopServer() }, nil
}

// Users returns a path for Start: prefix with one of 10,000 users, as in
// "/checkout?user=user-4711".
func Users(prefix string) func() string {
	return func() string { return prefix + "?user=user-" + strconv.Itoa(rand.IntN(10000)) }
}

// Work simulates a request's work (3 to 10 ms) and reports whether it failed:
// 0.2 % of requests fail anyway, and failRate more on a regressed path.
func Work(failRate float64) (failed bool) {
	time.Sleep(time.Duration(3+rand.IntN(8)) * time.Millisecond)
	return rand.Float64() < 0.002 || rand.Float64() < failRate
}

// Load sends requests to url() at the given rate per second until ctx is
// done, then waits for the requests in flight.
func Load(ctx context.Context, perSecond int, url func() string) {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			wg.Go(func() {
				resp, err := client.Get(url())
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// Metrics records every request's outcome and latency by path ("v1", "v2",
// "old", "new"…) and turns them into observations.
type Metrics struct {
	mu   sync.Mutex
	reqs []request
}

type request struct {
	at      time.Time
	path    string
	failed  bool
	latency time.Duration
}

// Record records one request that started at start.
func (m *Metrics) Record(path string, start time.Time, failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reqs = append(m.reqs, request{at: start, path: path, failed: failed, latency: time.Since(start)})
}

// Observe returns the error rate and p95 latency of newPath over the window
// of t (at most the last five seconds), with oldPath over the same window as
// the control. Before users reach the new path (the baseline, exposure 0) and
// after a rollback, everyone is on oldPath: it is judged alone, against the
// baseline.
func (m *Metrics) Observe(t monitor.Target, newPath, oldPath string) monitor.Observation {
	m.mu.Lock()
	defer m.mu.Unlock()
	since := t.Since
	if recent := time.Now().Add(-5 * time.Second); since.Before(recent) {
		since = recent
	}
	stats := func(path string) (rate float64, n int, lat []float64) {
		bad := 0
		for _, r := range m.reqs {
			if r.path != path || r.at.Before(since) {
				continue
			}
			n++
			if r.failed {
				bad++
			}
			lat = append(lat, r.latency.Seconds())
		}
		if n == 0 {
			return 0, 0, nil
		}
		return float64(bad) / float64(n), n, lat
	}
	var obs monitor.Observation
	alone := t.Phase == "baseline" || t.Phase == "rollback" || t.Exposure == 0
	if alone {
		er, n, lat := stats(oldPath)
		obs.Set(monitor.ErrorRate, monitor.Rate(er, n))
		obs.Set(monitor.LatencyP95, monitor.Value(p95(lat), len(lat)))
		return obs
	}
	er, n, lat := stats(newPath)
	cer, cn, clat := stats(oldPath)
	e, p := monitor.Rate(er, n), monitor.Value(p95(lat), len(lat))
	if cn > 0 {
		e.Control, e.ControlSamples = cer, cn
		p.Control, p.ControlSamples = p95(clat), cn
	}
	obs.Set(monitor.ErrorRate, e)
	obs.Set(monitor.LatencyP95, p)
	return obs
}

func p95(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(0.95*float64(len(s)-1))]
}
