// Package promtest starts a real Prometheus server for tests.
//
// [Start] runs the prometheus binary (Debian's package "prometheus", which
// installs /usr/bin/prometheus) on a free loopback port, with a configuration,
// a rules file and a data directory of its own in t.TempDir(), scraping and
// evaluating rules every second. It waits until the server is ready and stops
// it when the test ends. A missing binary fails the test: install it with
//
//	apt-get install -y --no-install-recommends prometheus
//
// or point $PROMETHEUS_BIN at one. The package's own service, if the package
// started one, does not matter: each server here has its own port and data.
//
// The flags used exist in Prometheus 2.42 (Debian 12) and later.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploykit/deploy/internal/proctest"
)

// Job is one scrape job.
type Job struct {
	// Name is the job label.
	Name string
	// Targets are host:port addresses scraped at /metrics.
	Targets []string
	// Labels are added to every series of the job's targets.
	Labels map[string]string
}

// Config describes the server to start.
type Config struct {
	// Jobs are the scrape jobs.
	Jobs []Job
	// Rules is the content of the rules file (Prometheus rule groups in
	// YAML); empty means no rules.
	Rules string
	// Interval is the scrape and rule evaluation interval; 0 means 1s.
	Interval time.Duration
	// Flags are extra command-line flags, such as
	// "--enable-feature=exemplar-storage".
	Flags []string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base address, such as "http://127.0.0.1:41234".
	URL string
	// Dir holds the configuration, the rules and the data.
	Dir string

	proc    *proctest.Process
	data    string // the TSDB path, which tells this server from another
	release func() // releases the port's reservation
}

// Binary returns the path of the prometheus binary: $PROMETHEUS_BIN, else
// prometheus on $PATH, else /usr/bin/prometheus.
func Binary() (string, error) {
	if p := os.Getenv("PROMETHEUS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("promtest: $PROMETHEUS_BIN: %w; install Prometheus with `apt-get install -y --no-install-recommends prometheus`", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus", nil
	}
	return "", fmt.Errorf("promtest: prometheus binary not found on $PATH nor at /usr/bin/prometheus: install it with `apt-get install -y --no-install-recommends prometheus` or set $PROMETHEUS_BIN")
}

// Start starts a server and registers its shutdown with t.Cleanup. It fails
// the test if the server cannot start or is not ready within 30 seconds.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 3 { // a port may still be taken by a process that does not reserve it
		s, err := start(bin, dir, cfg.Flags...)
		if err == nil {
			t.Cleanup(func() {
				defer s.release()
				if err := s.proc.Stop(); err != nil {
					t.Errorf("promtest: stopping prometheus: %v", err)
				}
				if t.Failed() {
					t.Logf("prometheus log:\n%s", s.proc.Logs(4000))
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("promtest: %v", lastErr)
	return nil
}

func writeConfig(dir string, cfg Config) error {
	iv := cfg.Interval
	if iv <= 0 {
		iv = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", dur(iv), dur(iv), dur(iv))
	fmt.Fprintf(&b, "rule_files:\n  - %q\n", filepath.Join(dir, "rules.yml"))
	b.WriteString("scrape_configs:\n")
	for _, j := range cfg.Jobs {
		fmt.Fprintf(&b, "  - job_name: %q\n    static_configs:\n      - targets: [", j.Name)
		for i, tg := range j.Targets {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", tg)
		}
		b.WriteString("]\n")
		if len(j.Labels) > 0 {
			keys := make([]string, 0, len(j.Labels))
			for k := range j.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteString("        labels:\n")
			for _, k := range keys {
				fmt.Fprintf(&b, "          %s: %q\n", k, j.Labels[k])
			}
		}
	}
	if len(cfg.Jobs) == 0 {
		b.WriteString("  []\n")
	}
	rules := cfg.Rules
	if strings.TrimSpace(rules) == "" {
		rules = "groups: []\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(b.String()), 0o600)
}

// dur formats d as a Prometheus duration in whole milliseconds.
func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func start(bin, dir string, flags ...string) (*Server, error) {
	addr, release, err := reserveAddr()
	if err != nil {
		return nil, err
	}
	s, err := startOn(bin, dir, addr, flags...)
	if err != nil {
		release()
		return nil, err
	}
	s.release = release
	return s, nil
}

func startOn(bin, dir, addr string, flags ...string) (*Server, error) {
	data := filepath.Join(dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--web.listen-address=" + addr,
		"--storage.tsdb.path=" + data,
		"--storage.tsdb.retention.time=1h",
		"--web.enable-lifecycle",
		"--log.level=warn",
	}, flags...)...)
	cmd.Dir = dir
	proc, err := proctest.Start("prometheus", cmd, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, Dir: dir, proc: proc, data: data}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := proc.WaitReady(ctx, s.ready); err != nil {
		_ = proc.Stop()
		return nil, err
	}
	return s, nil
}

// readyClient bounds each readiness probe.
var readyClient = &http.Client{Timeout: time.Second}

// ready reports whether the server answers /-/ready with 200 OK and is
// this one: its storage.tsdb.path flag is s's data directory. A server of
// another test run that took the port answers too, and must not be taken
// for ours (TestMonitoringActiveRealPrometheus read another run's
// targets).
func (s *Server) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/status/flags", nil)
	if err != nil {
		return err
	}
	resp, err = readyClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var flags struct {
		Data map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&flags); err != nil {
		return fmt.Errorf("%s: %w", req.URL, err)
	}
	if got := flags.Data["storage.tsdb.path"]; got != s.data {
		return fmt.Errorf("%s is another Prometheus (data in %q, not %q)", s.URL, got, s.data)
	}
	return nil
}

// Reload makes the server read its configuration and rules again, after a
// test rewrote them with WriteRules.
func (s *Server) Reload(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("promtest: reload: %s", resp.Status)
	}
	return nil
}

// WriteRules replaces the rules file; call Reload to load it.
func (s *Server) WriteRules(rules string) error {
	return os.WriteFile(filepath.Join(s.Dir, "rules.yml"), []byte(rules), 0o600)
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string { return s.proc.Logs(1 << 20) }
