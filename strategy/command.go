package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy"
)

// Defaults of Command.
const (
	// DefaultCommandTimeout bounds each command when neither Cmd.Timeout nor
	// Command.Timeout is set.
	DefaultCommandTimeout = 10 * time.Minute
	// DefaultReadyTimeout bounds a step's readiness polling when
	// CommandStep.ReadyTimeout is not set.
	DefaultReadyTimeout = 10 * time.Minute
	// DefaultReadyInterval is the wait between readiness polls.
	DefaultReadyInterval = 5 * time.Second
	// DefaultGrace is how long a timed-out command has between SIGTERM and
	// SIGKILL.
	DefaultGrace = 5 * time.Second
	// DefaultOutputLimit is how many bytes of a command's output are kept:
	// the tail.
	DefaultOutputLimit = 4096
)

// Cmd is one command: a program and its arguments, run directly, never
// through a shell.
//
// Each element of Args and each value in Env is a text/template executed
// with [CommandData]: "registry.example.com/checkout:{{.Version}}". A field
// is substituted inside its argument and stays one argument whatever it
// contains — spaces, quotes or ";" are not interpreted — and the result is
// never split. A missing label ({{.Labels.team}} with no such label) or
// {{required "PreviousVersion" .PreviousVersion}} with an empty value fails
// the command before it runs.
type Cmd struct {
	// Args is the program and its arguments. Required. A program without a
	// "/" is looked up in PATH.
	Args []string
	// Remote are arguments for a command run on another machine through Args
	// (ssh host --): each is substituted, quoted for a POSIX shell, and all
	// are joined into one last argument, because ssh joins its arguments with
	// spaces and the remote shell splits them again. So a release field stays
	// one argument on the remote side too.
	Remote []string
	// Env adds "NAME=value" variables, after Command.Env.
	Env []string
	// Dir is the working directory; empty means Command.Dir.
	Dir string
	// Timeout bounds the command; 0 means Command.Timeout.
	Timeout time.Duration
}

// CommandStep is one step of a [Command]: its commands run in order, then
// its readiness command is polled until it succeeds.
type CommandStep struct {
	// Name is unique within the plan ("set-image", "canary", "web-1").
	Name string
	// Exposure is the share of users on the new version once the step is
	// applied, in [0, 1]; the last step's is 1.
	Exposure float64
	// Bake is how long monitors watch before the next step.
	Bake time.Duration
	// Approval waits for the runner's approval gate before the step.
	Approval bool
	// Run are the commands that make the step happen, in order; the first
	// that fails fails the step. Required. They must be idempotent: after a
	// crash the runner may apply the step again (kubectl set image, helm
	// upgrade --install and systemctl restart are).
	Run []Cmd
	// Ready, when set, is polled after Run until it exits 0, every
	// Command.ReadyInterval, for ReadyTimeout: kubectl rollout status, a
	// curl of a health endpoint. The step fails if it never succeeds.
	Ready *Cmd
	// ReadyTimeout bounds the polling; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// CommandData is what the templates of a command may refer to.
type CommandData struct {
	ID              string // the deployment id
	Service         string
	Version         string
	PreviousVersion string
	Environment     string
	Commit          string
	Labels          map[string]string
	// Stage is the stage being deployed ("staging", "production").
	Stage string
	// Step is the step's name, or "rollback".
	Step string
	// Exposure is the step's share of users in [0, 1] ("0.25"), and
	// Percent the same in percent ("25").
	Exposure float64
	Percent  string
	// Token is the lease's fencing token (deploy.Deployment.Token): store
	// it with each change where the target can refuse a lower one.
	Token int64
}

// Command carries a release with commands — kubectl, helm, ssh, terraform,
// a script — instead of Go code: each step runs its commands and polls a
// readiness command; Rollback runs Revert. See [Kubectl], [Helm] and [SSH]
// for ready-made ones.
//
// Commands run directly, never through a shell (see [Cmd]): release fields
// are substituted into whole arguments. Each runs in a process group of its
// own with the environment of this process plus Env, Cmd.Env and
// DEPLOY_ID, DEPLOY_SERVICE, DEPLOY_VERSION, DEPLOY_PREVIOUS_VERSION,
// DEPLOY_ENVIRONMENT, DEPLOY_STAGE, DEPLOY_STEP, DEPLOY_EXPOSURE and
// DEPLOY_TOKEN, and stdin from /dev/null. When its timeout passes or the
// release is cancelled, the whole group gets SIGTERM and, Grace later,
// SIGKILL; when the command ends, anything it left running in its group is
// killed. A command that exits non-zero, is killed by a signal or times out
// fails the step (the runner then rolls back) or the rollback (the release
// ends in deploy.ErrRollbackFailed) with a *[CommandError] carrying the tail
// of its output, which the runner records in the release's timeline and
// report.
//
// Output (stdout and stderr together) is kept up to OutputLimit bytes, the
// tail; before it is shown anywhere, the user information of URLs
// (https://user:secret@host), the values of URL parameters named like a
// secret (token, key, sig, password…) and the strings in Redact are
// replaced by "REDACTED". Each command is a span, deploy.command, under the
// runner's step or rollback span, with process.command_args,
// process.exit.code and the output's tail.
type Command struct {
	// Label names the strategy in reports ("kubectl"); empty means "command".
	Label string
	// Steps are the plan. Required.
	Steps []CommandStep
	// Revert are the commands that return every user to the previous
	// version, in order; they must be idempotent. None means there is no
	// way back, which the runner refuses for production unless waived.
	Revert []Cmd
	// RevertReady, when set, is polled after Revert like CommandStep.Ready,
	// for ReadyTimeout.
	RevertReady *Cmd
	// Env adds "NAME=value" variables to every command.
	Env []string
	// Dir is the working directory of every command; empty means this
	// process's.
	Dir string
	// Timeout bounds each command; 0 means DefaultCommandTimeout.
	Timeout time.Duration
	// ReadyTimeout bounds RevertReady's polling; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// ReadyInterval is the wait between readiness polls; 0 means
	// DefaultReadyInterval.
	ReadyInterval time.Duration
	// Grace is the wait between SIGTERM and SIGKILL; 0 means DefaultGrace.
	Grace time.Duration
	// OutputLimit is how many bytes of output are kept per command; 0 means
	// DefaultOutputLimit.
	OutputLimit int
	// Redact are literal strings hidden from output and arguments wherever
	// they are shown: passwords, tokens.
	Redact []string
}

var _ deploy.Strategy = (*Command)(nil)

// Name returns Label, or "command".
func (s *Command) Name() string {
	if s.Label != "" {
		return s.Label
	}
	return "command"
}

// RollbackPath reports whether Revert is set.
func (s *Command) RollbackPath() bool { return len(s.Revert) > 0 }

var funcs = template.FuncMap{
	// required fails the command when value is empty: {{required
	// "PreviousVersion" .PreviousVersion}}.
	"required": func(name, value string) (string, error) {
		if value == "" {
			return "", fmt.Errorf("%s is empty", name)
		}
		return value, nil
	},
}

// parse parses one template; missing map keys are errors.
func parse(text string) (*template.Template, error) {
	return template.New("").Funcs(funcs).Option("missingkey=error").Parse(text)
}

// sample is data with every field set, to check templates in Validate.
var sample = CommandData{ID: "id", Service: "service", Version: "v2", PreviousVersion: "v1", Environment: "production",
	Commit: "commit", Stage: "production", Step: "step", Exposure: 1, Percent: "100", Token: 1}

// Validate reports a problem with the settings, naming the field and its
// value: no steps; a step with no name, a repeated name, no Run commands,
// an exposure outside [0, 1] or below the step before, a last step not at 1,
// a negative Bake or ReadyTimeout; a command with no Args, a template that
// does not parse or refers to a field CommandData does not have, an Env
// entry without "="; a negative duration or OutputLimit.
func (s *Command) Validate() error {
	if len(s.Steps) == 0 {
		return errors.New("strategy: Command.Steps is empty")
	}
	switch {
	case s.Timeout < 0:
		return fmt.Errorf("strategy: Command.Timeout %v is negative", s.Timeout)
	case s.ReadyTimeout < 0:
		return fmt.Errorf("strategy: Command.ReadyTimeout %v is negative", s.ReadyTimeout)
	case s.ReadyInterval < 0:
		return fmt.Errorf("strategy: Command.ReadyInterval %v is negative", s.ReadyInterval)
	case s.Grace < 0:
		return fmt.Errorf("strategy: Command.Grace %v is negative", s.Grace)
	case s.OutputLimit < 0:
		return fmt.Errorf("strategy: Command.OutputLimit %d is negative", s.OutputLimit)
	}
	if err := checkEnv("Command.Env", s.Env); err != nil {
		return err
	}
	names := map[string]bool{}
	prev := 0.0
	for i, st := range s.Steps {
		at := fmt.Sprintf("Command.Steps[%d]", i)
		switch {
		case st.Name == "":
			return fmt.Errorf("strategy: %s.Name is empty", at)
		case names[st.Name]:
			return fmt.Errorf("strategy: %s.Name %q is repeated", at, st.Name)
		case math.IsNaN(st.Exposure) || st.Exposure < 0 || st.Exposure > 1:
			return fmt.Errorf("strategy: %s.Exposure %v is outside [0, 1]", at, st.Exposure)
		case st.Exposure < prev:
			return fmt.Errorf("strategy: %s.Exposure %v is below the step before's %v", at, st.Exposure, prev)
		case st.Bake < 0:
			return fmt.Errorf("strategy: %s.Bake %v is negative", at, st.Bake)
		case st.ReadyTimeout < 0:
			return fmt.Errorf("strategy: %s.ReadyTimeout %v is negative", at, st.ReadyTimeout)
		case len(st.Run) == 0:
			return fmt.Errorf("strategy: %s.Run is empty", at)
		}
		names[st.Name], prev = true, st.Exposure
		for j, c := range st.Run {
			if err := c.check(fmt.Sprintf("%s.Run[%d]", at, j)); err != nil {
				return err
			}
		}
		if st.Ready != nil {
			if err := st.Ready.check(at + ".Ready"); err != nil {
				return err
			}
		}
	}
	if last := s.Steps[len(s.Steps)-1]; last.Exposure != 1 {
		return fmt.Errorf("strategy: Command.Steps[%d].Exposure %v: the last step must be at 1 (everyone)", len(s.Steps)-1, last.Exposure)
	}
	for j, c := range s.Revert {
		if err := c.check(fmt.Sprintf("Command.Revert[%d]", j)); err != nil {
			return err
		}
	}
	if s.RevertReady != nil {
		if err := s.RevertReady.check("Command.RevertReady"); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cmd) check(at string) error {
	if len(c.Args) == 0 {
		return fmt.Errorf("strategy: %s.Args is empty", at)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("strategy: %s.Timeout %v is negative", at, c.Timeout)
	}
	if err := checkEnv(at+".Env", c.Env); err != nil {
		return err
	}
	for field, list := range map[string][]string{"Args": c.Args, "Remote": c.Remote, "Env": c.Env} {
		for i, text := range list {
			t, err := parse(text)
			if err == nil {
				err = t.Option("missingkey=zero").Execute(discard{}, sample)
			}
			if err != nil {
				return fmt.Errorf("strategy: %s.%s[%d] %q: %w", at, field, i, text, err)
			}
		}
	}
	return nil
}

func checkEnv(at string, env []string) error {
	for i, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("strategy: %s[%d] %q is not NAME=value", at, i, kv)
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// data is the template data of d for a step.
func data(d *deploy.Deployment, step string, exposure float64) CommandData {
	return CommandData{ID: d.ID, Service: d.Release.Service, Version: d.Release.Version, PreviousVersion: d.Release.PreviousVersion,
		Environment: d.Release.Environment, Commit: d.Release.Commit, Labels: d.Release.Labels, Stage: d.Stage.Name,
		Step: step, Exposure: exposure, Percent: strconv.FormatFloat(exposure*100, 'f', -1, 64), Token: d.Token}
}

func execute(text string, dt CommandData) (string, error) {
	t, err := parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, dt); err != nil {
		return "", err
	}
	return b.String(), nil
}

// render substitutes dt into c and returns the process to run.
func (s *Command) render(c Cmd, dt CommandData) (proc, error) {
	p := proc{dir: c.Dir, timeout: c.Timeout, grace: s.Grace, limit: s.OutputLimit, red: &redactor{literals: s.Redact}}
	if p.dir == "" {
		p.dir = s.Dir
	}
	if p.timeout == 0 {
		p.timeout = cmpOr(s.Timeout, DefaultCommandTimeout)
	}
	p.grace = cmpOr(p.grace, DefaultGrace)
	if p.limit == 0 {
		p.limit = DefaultOutputLimit
	}
	for i, a := range c.Args {
		v, err := execute(a, dt)
		if err != nil {
			return proc{}, fmt.Errorf("strategy: argument %d %q: %w", i, a, err)
		}
		p.argv = append(p.argv, v)
	}
	if len(c.Remote) > 0 {
		q := make([]string, len(c.Remote))
		for i, a := range c.Remote {
			v, err := execute(a, dt)
			if err != nil {
				return proc{}, fmt.Errorf("strategy: remote argument %d %q: %w", i, a, err)
			}
			q[i] = shellQuote(v, true)
		}
		p.argv = append(p.argv, strings.Join(q, " "))
	}
	p.env = append(os.Environ(),
		"DEPLOY_ID="+dt.ID, "DEPLOY_SERVICE="+dt.Service, "DEPLOY_VERSION="+dt.Version,
		"DEPLOY_PREVIOUS_VERSION="+dt.PreviousVersion, "DEPLOY_ENVIRONMENT="+dt.Environment,
		"DEPLOY_STAGE="+dt.Stage, "DEPLOY_STEP="+dt.Step, "DEPLOY_EXPOSURE="+strconv.FormatFloat(dt.Exposure, 'f', -1, 64),
		"DEPLOY_TOKEN="+strconv.FormatInt(dt.Token, 10))
	for _, kv := range append(append([]string(nil), s.Env...), c.Env...) {
		v, err := execute(kv, dt)
		if err != nil {
			return proc{}, fmt.Errorf("strategy: environment %q: %w", kv, err)
		}
		p.env = append(p.env, v)
	}
	return p, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Plan returns one step per CommandStep. It renders every command for d, so
// that a template that fails for this release (a required field that is
// empty, a missing label) is refused before anything runs; Plan runs
// nothing. It returns Validate's error for bad settings.
func (s *Command) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.Commands(d); err != nil {
		return nil, err
	}
	steps := make([]deploy.Step, len(s.Steps))
	for i, st := range s.Steps {
		steps[i] = deploy.Step{Name: st.Name, Exposure: st.Exposure, Bake: st.Bake, Approval: st.Approval,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { return s.apply(ctx, d, st) }}
	}
	return steps, nil
}

// apply runs a step's commands, then polls its readiness command.
func (s *Command) apply(ctx context.Context, d *deploy.Deployment, st CommandStep) error {
	dt := data(d, st.Name, st.Exposure)
	if err := s.runAll(ctx, st.Run, dt, "run"); err != nil {
		return err
	}
	if st.Ready == nil {
		return nil
	}
	return s.ready(ctx, *st.Ready, dt, cmpOr(st.ReadyTimeout, DefaultReadyTimeout))
}

func (s *Command) runAll(ctx context.Context, cmds []Cmd, dt CommandData, role string) error {
	for _, c := range cmds {
		p, err := s.render(c, dt)
		if err != nil {
			return err
		}
		if o := p.traced(ctx, role); o.err != nil {
			return fmt.Errorf("strategy: %s: %w", dt.Step, o.err)
		}
	}
	return nil
}

// ready polls c until it exits 0 or timeout passes.
func (s *Command) ready(ctx context.Context, c Cmd, dt CommandData, timeout time.Duration) error {
	p, err := s.render(c, dt)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not ready within %v", timeout))
	defer cancel()
	interval := cmpOr(s.ReadyInterval, DefaultReadyInterval)
	span := trace.SpanFromContext(ctx)
	var last *CommandError // the last attempt that ran to its end
	giveUp := func(attempt int, o outcome) error {
		if last == nil || !o.err.TimedOut {
			last = o.err
		}
		return fmt.Errorf("strategy: %s: %w after %d attempt(s); the last that finished: %w", dt.Step, context.Cause(ctx), attempt, last)
	}
	for attempt := 1; ; attempt++ {
		o := p.traced(ctx, "ready")
		span.AddEvent("deploy.command.ready", trace.WithAttributes(
			attribute.Int("deploy.command.attempt", attempt), attribute.Bool("deploy.command.ready", o.err == nil),
			attribute.String("deploy.command.exit", exitText(o))))
		if o.err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return giveUp(attempt, o)
		}
		last = o.err
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return giveUp(attempt, o)
		case <-t.C:
		}
	}
}

// Rollback runs Revert, then polls RevertReady. Its commands see the step
// name "rollback" and the deployment's exposure.
func (s *Command) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if len(s.Revert) == 0 {
		return errors.New("strategy: Command has no Revert commands")
	}
	dt := data(d, "rollback", d.Exposure)
	if err := s.runAll(ctx, s.Revert, dt, "revert"); err != nil {
		return err
	}
	if s.RevertReady == nil {
		return nil
	}
	return s.ready(ctx, *s.RevertReady, dt, cmpOr(s.ReadyTimeout, DefaultReadyTimeout))
}

// StepCommands are the exact commands of one step, or of the rollback, for
// one deployment: what [Command.Commands] returns.
type StepCommands struct {
	// Step is the step's name, or "rollback".
	Step string
	// Run are the commands, as argument lists (redacted).
	Run [][]string
	// Ready is the readiness command, if any, and how long it is polled.
	Ready        []string
	ReadyTimeout time.Duration
}

// Commands returns the exact commands each step, then the rollback, would
// run for d — arguments substituted and redacted — without running
// anything. It fails like Plan for a template that fails for d.
func (s *Command) Commands(d *deploy.Deployment) ([]StepCommands, error) {
	var out []StepCommands
	add := func(step string, exposure float64, run []Cmd, ready *Cmd, timeout time.Duration) error {
		dt := data(d, step, exposure)
		sc := StepCommands{Step: step}
		for _, c := range run {
			p, err := s.render(c, dt)
			if err != nil {
				return fmt.Errorf("%s: %w", step, err)
			}
			sc.Run = append(sc.Run, p.red.args(p.argv))
		}
		if ready != nil {
			p, err := s.render(*ready, dt)
			if err != nil {
				return fmt.Errorf("%s: readiness: %w", step, err)
			}
			sc.Ready, sc.ReadyTimeout = p.red.args(p.argv), timeout
		}
		out = append(out, sc)
		return nil
	}
	for _, st := range s.Steps {
		if err := add(st.Name, st.Exposure, st.Run, st.Ready, cmpOr(st.ReadyTimeout, DefaultReadyTimeout)); err != nil {
			return nil, err
		}
	}
	if len(s.Revert) > 0 {
		if err := add("rollback", d.Exposure, s.Revert, s.RevertReady, cmpOr(s.ReadyTimeout, DefaultReadyTimeout)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Describe writes the exact commands of every step and of the rollback for
// d as a Markdown list, for a plan or a change ticket.
func (s *Command) Describe(d *deploy.Deployment) (string, error) {
	cmds, err := s.Commands(d)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, sc := range cmds {
		fmt.Fprintf(&b, "- %s:", sc.Step)
		for _, argv := range sc.Run {
			fmt.Fprintf(&b, " `%s`;", display(argv))
		}
		if sc.Ready != nil {
			fmt.Fprintf(&b, " then `%s` until it succeeds (within %v)", display(sc.Ready), sc.ReadyTimeout)
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// DescribeRollback says what Rollback runs, with the templates not yet
// substituted, for the rollback procedure.
func (s *Command) DescribeRollback() string {
	if len(s.Revert) == 0 {
		return "none: no Revert commands"
	}
	parts := make([]string, len(s.Revert))
	for i, c := range s.Revert {
		parts[i] = "`" + display(append(append([]string(nil), c.Args...), c.Remote...)) + "`"
	}
	desc := "run " + strings.Join(parts, ", then ")
	if s.RevertReady != nil {
		desc += fmt.Sprintf(", then poll `%s` until it succeeds (within %v)",
			display(append(append([]string(nil), s.RevertReady.Args...), s.RevertReady.Remote...)), cmpOr(s.ReadyTimeout, DefaultReadyTimeout))
	}
	return desc
}
