package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/deploykit/deploy/internal/redact"
)

// Job defaults.
const (
	// DefaultJobTimeout bounds a Job's command when Timeout is zero.
	DefaultJobTimeout = time.Minute
	// DefaultJobOutput is how much of a command's output a Job keeps when
	// MaxOutput is zero.
	DefaultJobOutput = 4 << 10
)

// Job is a check made by running a command, like Argo Rollouts' job metric
// provider: exit status 0 passes, any other fails. It runs Command — an
// argv, with no shell between, each argument a text/template executed with
// the Target ("{{.Version}}") — and reports a Check named Name whose
// Detail holds the exit status and the end of what the command wrote on
// stdout and stderr (at most MaxOutput bytes, on one line, redacted of URL
// credentials and Env's values). A command still running after Timeout is
// killed, with every process it started (its process group, on Unix), and
// fails the check.
//
// Observe returns an error — the source could not measure — only when the
// command cannot be run at all (not found, not executable, a bad template).
// A failed check is not critical unless Critical is set: it counts toward
// the rollback policy's failure limit through rollback.CriticalChecks.
// A Job is not modified by Observe and may be shared.
type Job struct {
	// Name names the check; empty means "job " and the program's name.
	Name string
	// Command is the program and its arguments. Required.
	Command []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Env is added to the process's environment, as "KEY=value". Values
	// are never shown.
	Env []string
	// Timeout bounds the command; 0 means DefaultJobTimeout. Under a
	// runner, its observe timeout (deploy.WithTimeouts, 30 s by default)
	// bounds the command too: raise it for a longer job.
	Timeout time.Duration
	// MaxOutput is how many bytes of output are kept (the last ones); 0
	// means DefaultJobOutput.
	MaxOutput int
	// Critical marks the check critical: its failure rolls back at once.
	Critical bool
}

// CriticalChecks reports whether the job's check is critical.
func (j *Job) CriticalChecks() bool { return j != nil && j.Critical }

// checkName is the check's name.
func (j *Job) checkName() string {
	if j.Name != "" {
		return j.Name
	}
	if len(j.Command) > 0 {
		return "job " + j.Command[0]
	}
	return "job"
}

// Validate reports an empty command and negative bounds.
func (j *Job) Validate() error {
	switch {
	case len(j.Command) == 0 || j.Command[0] == "":
		return errors.New("monitor: Job.Command is empty")
	case j.Timeout < 0:
		return fmt.Errorf("monitor: Job.Timeout %v is negative", j.Timeout)
	case j.MaxOutput < 0:
		return fmt.Errorf("monitor: Job.MaxOutput %d is negative", j.MaxOutput)
	}
	return nil
}

func (j *Job) secrets() []string {
	var s []string
	for _, kv := range j.Env {
		for i := range len(kv) {
			if kv[i] == '=' {
				s = append(s, kv[i+1:])
				break
			}
		}
	}
	return s
}

// Observe runs the command for t and reports whether it exited 0.
func (j *Job) Observe(ctx context.Context, t Target) (Observation, error) {
	if err := j.Validate(); err != nil {
		return Observation{}, err
	}
	argv := make([]string, len(j.Command))
	for i, a := range j.Command {
		v, err := render("Job", fmt.Sprintf("Command[%d]", i), a, t)
		if err != nil {
			return Observation{}, err
		}
		argv[i] = v
	}
	timeout := cmp.Or(j.Timeout, DefaultJobTimeout)
	pctx := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = j.Dir
	if len(j.Env) > 0 {
		cmd.Env = append(os.Environ(), j.Env...)
	}
	out := &tail{max: cmp.Or(j.MaxOutput, DefaultJobOutput)}
	cmd.Stdout, cmd.Stderr = out, out
	killGroup(cmd)
	// Children that keep the output open must not hold Observe past the
	// kill.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	text := redact.Body(out.bytes(), out.max, j.secrets()...)
	var exit *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		if parent, ok := pctx.Deadline(); ok && parent.Before(start.Add(timeout)) {
			// The caller's bound (the runner's observe timeout) came first.
			return j.check(false, fmt.Sprintf("killed after %v at the caller's deadline, before the timeout %v", took, timeout), text), nil
		}
		return j.check(false, fmt.Sprintf("killed after the timeout %v", timeout), text), nil
	case err == nil:
		return j.check(true, fmt.Sprintf("exit status 0 in %v", took), text), nil
	case errors.As(err, &exit):
		return j.check(false, fmt.Sprintf("%v in %v", exit, took), text), nil
	case errors.Is(err, exec.ErrWaitDelay):
		return j.check(true, fmt.Sprintf("exit status 0 in %v (a child kept the output open)", took), text), nil
	}
	return Observation{}, redact.Error(fmt.Errorf("monitor: job %s: %w", j.checkName(), err), j.secrets()...)
}

func (j *Job) check(ok bool, status, output string) Observation {
	detail := status
	if output != "" {
		detail += ": " + output
	}
	return Observation{At: time.Now(), Checks: []Check{{Name: j.checkName(), OK: ok, Critical: j.Critical, Detail: detail}}}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b, t.cut = b[len(b)-t.max:], true
	}
	if t.cut {
		return append([]byte("…"), b...)
	}
	return append([]byte(nil), b...)
}

// CallTimeout returns Timeout: the runner refuses a Job whose Timeout is
// longer than its Observe bound (deploy.Timeouts), which would stop the
// command first. 0 (DefaultJobTimeout) is not checked: the runner's bound
// applies.
func (j *Job) CallTimeout() time.Duration { return j.Timeout }
