package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/strategy"
)

// These tests run real processes: testdata/kubectl, and testdata/helm (the
// same script), stand in for the real tools and record their arguments.
// They use real time, kept short.

// fake is one test's stand-in tools: where they log, keep state, and the
// marker in their environment by which stray processes are found.
type fake struct {
	dir, mark string
}

func newFake(t *testing.T) *fake {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in tools are shell scripts")
	}
	return &fake{dir: t.TempDir(), mark: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())}
}

// tool is the absolute path of a stand-in.
func tool(t *testing.T, name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// env returns the stand-ins' environment plus extra.
func (f *fake) env(extra ...string) []string {
	return append([]string{"FAKE_LOG=" + filepath.Join(f.dir, "log"), "FAKE_STATE=" + f.dir, "DEPLOYKIT_TEST_MARK=" + f.mark}, extra...)
}

// calls returns the argument lists the stand-ins were called with, in order.
func (f *fake) calls(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "==" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return out
}

// file returns the content of a file the stand-ins wrote.
func (f *fake) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noStrays fails if a process of this test is still running: one whose
// environment holds the test's marker. Killed processes may take a moment to
// be reaped by init; zombies do not count.
func (f *fake) noStrays(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; {
		left = left[:0]
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			env, err := os.ReadFile(d + "/environ")
			if err != nil || !strings.Contains(string(env), "DEPLOYKIT_TEST_MARK="+f.mark+"\x00") {
				continue
			}
			stat, _ := os.ReadFile(d + "/stat")
			if fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
				continue
			}
			cmd, _ := os.ReadFile(d + "/cmdline")
			left = append(left, filepath.Base(d)+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes left running:\n%s", strings.Join(left, "\n"))
	}
}

var cmdDeployment = &deploy.Deployment{ID: "checkout-production-1",
	Release: deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production"},
	Stage:   deploy.Stage{Name: "production"}, Token: 7}

// kubectl returns the Kubectl recipe on the stand-in, with short timeouts.
func kubectl(t *testing.T, f *fake, extra ...string) *strategy.Command {
	t.Helper()
	s, err := strategy.Kubectl{Kubectl: tool(t, "kubectl"), Deployment: "checkout", Container: "app",
		Image: "registry.example.com/checkout", Namespace: "shop", ReadyTimeout: time.Second, Env: f.env(extra...)}.Command()
	if err != nil {
		t.Fatal(err)
	}
	s.ReadyInterval, s.Grace = 10*time.Millisecond, 100*time.Millisecond
	return s
}

func applyAll(ctx context.Context, s deploy.Strategy, d *deploy.Deployment) error {
	steps, err := s.Plan(ctx, d)
	if err != nil {
		return err
	}
	for i, st := range steps {
		d := *d
		d.Step = i
		if err := st.Apply(ctx, &d); err != nil {
			return err
		}
	}
	return nil
}

func TestCommandSubstitutesReleaseFieldsAsWholeArguments(t *testing.T) {
	f := newFake(t)
	s := &strategy.Command{Steps: []strategy.CommandStep{{Name: "deploy", Exposure: 1, Run: []strategy.Cmd{{
		Args: []string{tool(t, "kubectl"), "annotate", "release={{.Version}}", "--note", "{{.Labels.note}}", "token={{.Token}}"},
		Env:  []string{"EXTRA={{.Service}}"},
	}}}}, Env: f.env()}
	d := *cmdDeployment
	d.Release.Version = "v2 $(touch pwned); echo"
	d.Release.Labels = map[string]string{"note": "it's *two* words"}
	if err := applyAll(t.Context(), s, &d); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"annotate", "release=v2 $(touch pwned); echo", "--note", "it's *two* words", "token=7"}}
	if diff := cmp.Diff(want, f.calls(t)); diff != "" {
		t.Errorf("arguments (-want +got):\n%s", diff)
	}
	wantEnv := "DEPLOY_ENVIRONMENT=production\nDEPLOY_EXPOSURE=1\nDEPLOY_ID=checkout-production-1\nDEPLOY_PREVIOUS_VERSION=v1\n" +
		"DEPLOY_SERVICE=checkout\nDEPLOY_STAGE=production\nDEPLOY_STEP=deploy\nDEPLOY_TOKEN=7\nDEPLOY_VERSION=v2 $(touch pwned); echo\n"
	if diff := cmp.Diff(wantEnv, f.file(t, "env")); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a shell ran the version")
	}
	// A missing label fails the command before it runs.
	d.Release.Labels = nil
	if err := applyAll(t.Context(), s, &d); err == nil || !strings.Contains(err.Error(), "note") {
		t.Errorf("with no note label: %v, want an error naming it", err)
	}
	if n := len(f.calls(t)); n != 1 {
		t.Errorf("%d calls, want still 1", n)
	}
}

func TestCommandKubectlRunsSetImageThenPollsRolloutStatus(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_READY_AFTER=3")
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	ctx, span := tp.Tracer("test").Start(t.Context(), "deploy.step")
	err := applyAll(ctx, s, cmdDeployment)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	status := []string{"rollout", "status", "deployment/checkout", "--timeout", "1s", "--namespace", "shop"}
	want := [][]string{{"set", "image", "deployment/checkout", "app=registry.example.com/checkout:v2", "--namespace", "shop"}, status, status, status}
	if diff := cmp.Diff(want, f.calls(t)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	var got []string
	for _, sp := range sr.Ended() {
		if sp.Name() == "deploy.command" {
			got = append(got, fmt.Sprintf("%s %s %v", attrOf(sp.Attributes(), "deploy.command.role").AsString(),
				attrOf(sp.Attributes(), "process.command_args").AsStringSlice()[1], attrOf(sp.Attributes(), "process.exit.code").AsInt64()))
		}
	}
	wantSpans := []string{"run set 0", "ready rollout 1", "ready rollout 1", "ready rollout 0"}
	if diff := cmp.Diff(wantSpans, got); diff != "" {
		t.Errorf("command spans (-want +got):\n%s", diff)
	}
	f.noStrays(t)
}

func TestCommandReadinessGivesUpAfterItsTimeout(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_READY_AFTER=1000000")
	s.Steps[0].ReadyTimeout = 300 * time.Millisecond
	start := time.Now()
	err := applyAll(t.Context(), s, cmdDeployment)
	if err == nil || !strings.Contains(err.Error(), "not ready within 300ms") || !strings.Contains(err.Error(), "Waiting for deployment rollout") {
		t.Fatalf("err = %v, want not ready within 300ms, with the last output", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("gave up after %v", el)
	}
}

func TestCommandTimeoutKillsTheProcessGroup(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_HANG=set image")
	s.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := applyAll(t.Context(), s, cmdDeployment)
	var ce *strategy.CommandError
	if !errors.As(err, &ce) || !ce.TimedOut || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout 300ms") {
		t.Fatalf("err = %v, want a timed-out CommandError", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned after %v", el)
	}
	if child := strings.TrimSpace(f.file(t, "child")); child == "" {
		t.Error("the stand-in started no child")
	}
	f.noStrays(t)
}

func TestCommandKillsWhatACommandLeftRunning(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_LEAVE=set image")
	start := time.Now()
	if err := applyAll(t.Context(), s, cmdDeployment); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned after %v: waited for the child's output", el)
	}
	f.noStrays(t)
}

func TestCommandKeepsARedactedTailOfMegabytesOfOutput(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_SPEW=set image")
	s.Redact = []string{"registry.example.com"}
	err := applyAll(t.Context(), s, cmdDeployment)
	var ce *strategy.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CommandError", err)
	}
	if ce.ExitCode != 1 || ce.OutputBytes < 5_000_000 || len(ce.Output) > strategy.DefaultOutputLimit {
		t.Errorf("exit %d, %d bytes written, %d kept; want exit 1, over 5 MB written, at most %d kept", ce.ExitCode, ce.OutputBytes, len(ce.Output), strategy.DefaultOutputLimit)
	}
	wantLast := "error: push to https://REDACTED@REDACTED/v2/checkout?token=REDACTED&page=2 failed\n"
	if !strings.HasSuffix(ce.Output, wantLast) {
		t.Errorf("output ends %q, want %q", ce.Output[max(0, len(ce.Output)-200):], wantLast)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "registry.example.com") {
		t.Errorf("a secret shows in %q", err)
	}
	if !strings.HasPrefix(ce.Output, "progress:") {
		t.Errorf("the tail starts in the middle of a line: %q", ce.Output[:40])
	}
	if want := "app=REDACTED/checkout:v2"; ce.Args[4] != want {
		t.Errorf("argument %q, want %q", ce.Args[4], want)
	}
}

func TestCommandKilledByASignalFailsTheStep(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_SIGNAL=set image")
	err := applyAll(t.Context(), s, cmdDeployment)
	var ce *strategy.CommandError
	if !errors.As(err, &ce) || ce.Signal != "killed" || ce.ExitCode != -1 {
		t.Fatalf("err = %v, want a CommandError for signal killed", err)
	}
	if !strings.Contains(err.Error(), "was killed by signal killed") {
		t.Errorf("message %q", err)
	}
}

func TestCommandRollbackSetsThePreviousImage(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f)
	if err := s.Rollback(t.Context(), cmdDeployment); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"set", "image", "deployment/checkout", "app=registry.example.com/checkout:v1", "--namespace", "shop"},
		{"rollout", "status", "deployment/checkout", "--timeout", "1s", "--namespace", "shop"},
	}
	if diff := cmp.Diff(want, f.calls(t)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	d := *cmdDeployment
	d.Release.PreviousVersion = ""
	if err := s.Rollback(t.Context(), &d); err == nil || !strings.Contains(err.Error(), "PreviousVersion is empty") {
		t.Errorf("with no previous version: %v", err)
	}
	if _, err := s.Plan(t.Context(), &d); err == nil || !strings.Contains(err.Error(), "PreviousVersion is empty") {
		t.Errorf("Plan with no previous version: %v, want refused before anything runs", err)
	}
}

func TestCommandKeepsTheStrategyContracts(t *testing.T) {
	f := newFake(t)
	for _, s := range []*strategy.Command{kubectl(t, f), helm(t, f)} {
		d := *cmdDeployment
		if err := deploytest.TestStrategy(t.Context(), s, &d); err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
	}
	f.noStrays(t)
}

func helm(t *testing.T, f *fake, extra ...string) *strategy.Command {
	t.Helper()
	s, err := strategy.Helm{Helm: tool(t, "helm"), Release: "checkout", Chart: "oci://registry.example.com/charts/checkout",
		Namespace: "shop", Values: []string{"prod.yaml"}, Set: []string{"commit={{.Commit}}"}, Env: f.env(extra...)}.Command()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCommandHelmUpgradesWithTheVersionAndRollsBackWithThePrevious(t *testing.T) {
	f := newFake(t)
	s := helm(t, f)
	d := *cmdDeployment
	d.Release.Commit = "abc123"
	if err := applyAll(t.Context(), s, &d); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(t.Context(), &d); err != nil {
		t.Fatal(err)
	}
	upgrade := func(tag string) []string {
		return []string{"upgrade", "checkout", "oci://registry.example.com/charts/checkout", "--install", "--atomic", "--wait", "--timeout", "5m0s",
			"--namespace", "shop", "--values", "prod.yaml", "--set-string", "commit=abc123", "--set-string", "image.tag=" + tag}
	}
	if diff := cmp.Diff([][]string{upgrade("v2"), upgrade("v1")}, f.calls(t)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestCommandSSHQuotesRemoteArgumentsAndRollsHostByHost(t *testing.T) {
	f := newFake(t)
	s, err := strategy.SSH{SSH: tool(t, "kubectl"), Hosts: []string{"web-1", "web-2"}, User: "deploy",
		Deploy: []string{"sudo", "deploy-checkout", "{{.Version}}"},
		Revert: []string{"sudo", "deploy-checkout", "{{.PreviousVersion}}"}}.Command()
	if err != nil {
		t.Fatal(err)
	}
	s.Env = f.env()
	steps, err := s.Plan(t.Context(), cmdDeployment)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, st := range steps {
		plan = append(plan, fmt.Sprintf("%s@%v", st.Name, st.Exposure))
	}
	if diff := cmp.Diff([]string{"web-1@0.5", "web-2@1"}, plan); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	d := *cmdDeployment
	d.Release.Version = "v2'; reboot; '"
	if err := applyAll(t.Context(), s, &d); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"-o", "BatchMode=yes", "-l", "deploy", "--", "web-1", `'sudo' 'deploy-checkout' 'v2'\''; reboot; '\'''`},
		{"-o", "BatchMode=yes", "-l", "deploy", "--", "web-2", `'sudo' 'deploy-checkout' 'v2'\''; reboot; '\'''`},
	}
	if diff := cmp.Diff(want, f.calls(t)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestCommandDescribeShowsTheExactCommands(t *testing.T) {
	s, err := strategy.Kubectl{Deployment: "checkout", Container: "app", Image: "registry.example.com/checkout", Namespace: "shop"}.Command()
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Describe(cmdDeployment)
	if err != nil {
		t.Fatal(err)
	}
	want := "- set-image: `kubectl set image deployment/checkout app=registry.example.com/checkout:v2 --namespace shop`; " +
		"then `kubectl rollout status deployment/checkout --timeout 5m0s --namespace shop` until it succeeds (within 6m0s)\n" +
		"- rollback: `kubectl set image deployment/checkout app=registry.example.com/checkout:v1 --namespace shop`; " +
		"then `kubectl rollout status deployment/checkout --timeout 5m0s --namespace shop` until it succeeds (within 6m0s)\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	wantRB := "run `kubectl set image deployment/checkout 'app=registry.example.com/checkout:{{required \"PreviousVersion\" .PreviousVersion}}' --namespace shop`, " +
		"then poll `kubectl rollout status deployment/checkout --timeout 5m0s --namespace shop` until it succeeds (within 6m0s)"
	if diff := cmp.Diff(wantRB, s.DescribeRollback()); diff != "" {
		t.Errorf("DescribeRollback (-want +got):\n%s", diff)
	}
}

func TestCommandValidateNamesTheFieldAndItsValue(t *testing.T) {
	ok := func() *strategy.Command {
		return &strategy.Command{Steps: []strategy.CommandStep{{Name: "a", Exposure: 0.5, Run: []strategy.Cmd{{Args: []string{"true"}}}},
			{Name: "b", Exposure: 1, Run: []strategy.Cmd{{Args: []string{"true"}}}}}}
	}
	for _, tc := range []struct {
		change func(*strategy.Command)
		want   string
	}{
		{func(s *strategy.Command) { s.Steps = nil }, "Command.Steps is empty"},
		{func(s *strategy.Command) { s.Steps[1].Name = "a" }, `Command.Steps[1].Name "a" is repeated`},
		{func(s *strategy.Command) { s.Steps[0].Exposure = 1.5 }, "Command.Steps[0].Exposure 1.5 is outside [0, 1]"},
		{func(s *strategy.Command) { s.Steps[1].Exposure = 0.9 }, "Command.Steps[1].Exposure 0.9: the last step must be at 1"},
		{func(s *strategy.Command) { s.Steps[0].Run = nil }, "Command.Steps[0].Run is empty"},
		{func(s *strategy.Command) { s.Steps[1].Run[0].Args = nil }, "Command.Steps[1].Run[0].Args is empty"},
		{func(s *strategy.Command) { s.Steps[1].Run[0].Args = []string{"echo", "{{.Verison}}"} }, `Command.Steps[1].Run[0].Args[1] "{{.Verison}}": template: :1:2: executing "" at <.Verison>: can't evaluate field Verison`},
		{func(s *strategy.Command) { s.Steps[0].Ready = &strategy.Cmd{Args: []string{"x", "{{.Version"}} }, `Command.Steps[0].Ready.Args[1] "{{.Version"`},
		{func(s *strategy.Command) { s.Revert = []strategy.Cmd{{Args: []string{"x"}, Env: []string{"NOVALUE"}}} }, `Command.Revert[0].Env[0] "NOVALUE" is not NAME=value`},
		{func(s *strategy.Command) { s.Timeout = -time.Second }, "Command.Timeout -1s is negative"},
		{func(s *strategy.Command) { s.OutputLimit = -1 }, "Command.OutputLimit -1 is negative"},
	} {
		s := ok()
		tc.change(s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want it to say %q", err, tc.want)
		}
	}
	if err := ok().Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
	for _, tc := range []struct {
		k    strategy.Kubectl
		want string
	}{
		{strategy.Kubectl{Container: "app", Image: "img"}, "Kubectl.Deployment is empty"},
		{strategy.Kubectl{Deployment: "--all", Container: "app", Image: "img"}, `Kubectl.Deployment "--all" starts with "-"`},
		{strategy.Kubectl{Deployment: "x", Container: "app", Image: "img", Namespace: "a b"}, `Kubectl.Namespace "a b" holds white space`},
	} {
		if _, err := tc.k.Command(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Kubectl.Command() = %v, want %q", err, tc.want)
		}
	}
}

// commandRunner returns a runner on real time with short intervals, for
// releases whose commands really run.
func commandRunner(t *testing.T, s deploy.Strategy) *deploy.Runner {
	t.Helper()
	return newRunner(t, s, deploytest.Healthy(), deploy.WithInterval(20*time.Millisecond), deploy.WithRollbackSettle(time.Millisecond))
}

func TestCommandTimeoutFailsTheStepAndRollsBack(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_HANG=checkout:v2")
	s.Timeout = 300 * time.Millisecond
	rep, err := commandRunner(t, s).Run(t.Context(), rel)
	if !errors.Is(err, deploy.ErrStepFailed) || rep.Status == deploy.Succeeded || rep.Status == deploy.RollbackFailed {
		t.Fatalf("err = %v, status %s; want the step failed and rolled back", err, rep.Status)
	}
	if !strings.Contains(rep.Markdown(), "did not finish (timeout 300ms); its process group was killed") {
		t.Errorf("the report does not say the command timed out:\n%s", rep.Markdown())
	}
	calls := f.calls(t)
	if len(calls) < 2 || calls[len(calls)-2][3] != "app=registry.example.com/checkout:v1" {
		t.Errorf("calls %q: want the rollback to set v1", calls)
	}
	f.noStrays(t)
}

func TestCommandFailingRevertEndsInRollbackFailed(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f, "FAKE_FAIL=checkout:v1", "FAKE_READY_AFTER=1000000")
	s.Steps[0].ReadyTimeout = 100 * time.Millisecond
	rep, err := commandRunner(t, s).Run(t.Context(), rel)
	if !errors.Is(err, deploy.ErrRollbackFailed) || rep.Status != deploy.RollbackFailed {
		t.Fatalf("err = %v, status %s; want rollback failed", err, rep.Status)
	}
	if want := "exited with status 3: error: kubectl set failed on purpose"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	f.noStrays(t)
}

func TestCommandReleaseSucceedsThroughTheRunner(t *testing.T) {
	f := newFake(t)
	s := kubectl(t, f)
	rep, err := commandRunner(t, s).Run(t.Context(), rel)
	if err != nil || rep.Status != deploy.Succeeded {
		t.Fatalf("err = %v, status %s", err, rep.Status)
	}
	got := f.calls(t)
	if len(got) != 2 || got[0][3] != "app=registry.example.com/checkout:v2" {
		t.Errorf("calls %q", got)
	}
	if id := strings.TrimSpace(f.file(t, "env")); !strings.Contains(id, "DEPLOY_ID="+rep.ID) || !strings.Contains(id, "DEPLOY_TOKEN="+strconv.Itoa(1)) {
		t.Errorf("environment %q: want the release's id and token", id)
	}
}
