package strategy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans the strategies of
// this package record.
const ScopeName = "github.com/deploykit/deploy/strategy"

// CommandError is the error of a command that did not succeed: it exited
// with a non-zero status, was killed by a signal, timed out, or could not be
// started. Args and Output are redacted (see [Command]).
type CommandError struct {
	// Args is the command as run, redacted.
	Args []string
	// ExitCode is the exit status, or -1 when the command was killed by a
	// signal, timed out or did not start.
	ExitCode int
	// Signal names the signal that killed the command ("killed",
	// "terminated"), if one did.
	Signal string
	// TimedOut reports that the command ran past its timeout, or its context
	// was cancelled, and its process group was killed.
	TimedOut bool
	// Output is the tail of what the command wrote to stdout and stderr,
	// redacted, at most the Command's OutputLimit bytes.
	Output string
	// OutputBytes is how many bytes the command wrote in all.
	OutputBytes int64
	// Err is the underlying error: the context's cause on a timeout, the
	// error of exec on a start failure, else the *exec.ExitError.
	Err error
}

// Error says which command failed, how, and what it wrote last.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command %s ", display(e.Args))
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, "did not finish (%v); its process group was killed", e.Err)
	case e.Signal != "":
		fmt.Fprintf(&b, "was killed by signal %s", e.Signal)
	case e.ExitCode >= 0:
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	default:
		fmt.Fprintf(&b, "could not run: %v", e.Err)
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString(": ")
		if int64(len(e.Output)) < e.OutputBytes {
			fmt.Fprintf(&b, "[last %d of %d bytes] ", len(e.Output), e.OutputBytes)
		}
		b.WriteString(out)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *CommandError) Unwrap() error { return e.Err }

// proc is one command ready to run: argv and environment rendered.
type proc struct {
	argv    []string
	env     []string
	dir     string
	timeout time.Duration
	grace   time.Duration
	limit   int
	red     *redactor
}

// outcome is what running a proc gave.
type outcome struct {
	output string // redacted tail
	bytes  int64
	dur    time.Duration
	err    *CommandError // nil on success
}

// outputWait bounds how long the output is read after the process group is
// gone: a process that left the group (setsid) may still hold the pipe.
const outputWait = 500 * time.Millisecond

// run runs p, never through a shell, in a process group of its own. When the
// timeout passes or ctx is done, the group gets SIGTERM, then SIGKILL after
// the grace period; when the command ends, whatever it left running in its
// group is killed too, so that nothing it started outlives it.
func (p proc) run(ctx context.Context) outcome {
	start := time.Now()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, fmt.Errorf("timeout %v", p.timeout))
		defer cancel()
	}
	out := &tail{limit: p.limit}
	fail := func(o outcome, ce *CommandError) outcome {
		ce.Args = p.red.args(p.argv)
		ce.Output, ce.OutputBytes = o.output, o.bytes
		o.err = ce
		return o
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env, cmd.Dir = p.env, p.dir
	ownGroup(cmd)
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(outcome{}, &CommandError{ExitCode: -1, Err: err})
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := ctx.Err(); err != nil {
		pr.Close()
		pw.Close()
		return fail(outcome{}, &CommandError{ExitCode: -1, TimedOut: true, Err: context.Cause(ctx)})
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fail(outcome{}, &CommandError{ExitCode: -1, Err: err})
	}
	pw.Close() // the child holds its own copy
	copied := make(chan struct{})
	go func() {
		io.Copy(out, pr)
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	pid := cmd.Process
	var waitErr error
	timedOut := false
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		timedOut = true
		killGroup(pid, false)
		t := time.NewTimer(p.grace)
		select {
		case waitErr = <-exited:
			t.Stop()
		case <-t.C:
			killGroup(pid, true)
			waitErr = <-exited
		}
	}
	killGroup(pid, true) // whatever the command left behind in its group
	t := time.NewTimer(outputWait)
	select {
	case <-copied:
		t.Stop()
	case <-t.C:
		pr.Close()
		<-copied
	}
	pr.Close()
	o := outcome{output: p.red.text(out.String()), bytes: out.total, dur: time.Since(start)}
	switch {
	case timedOut:
		return fail(o, &CommandError{ExitCode: -1, TimedOut: true, Signal: signalOf(waitErr), Err: context.Cause(ctx)})
	case waitErr != nil:
		ce := &CommandError{ExitCode: -1, Err: waitErr}
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			ce.ExitCode = ee.ExitCode()
			ce.Signal = signalOf(waitErr)
		}
		return fail(o, ce)
	}
	return o
}

// traced runs p under a span "deploy.command", child of the span in ctx
// (the runner's step or rollback span), with the command, its exit status
// and the tail of its output.
func (p proc) traced(ctx context.Context, role string) outcome {
	tr := trace.SpanFromContext(ctx).TracerProvider().Tracer(ScopeName)
	ctx, span := tr.Start(ctx, "deploy.command")
	defer span.End()
	o := p.run(ctx)
	if span.IsRecording() {
		code := 0
		if o.err != nil {
			code = o.err.ExitCode
		}
		span.SetAttributes(
			attribute.String("deploy.command.role", role),
			semconv.ProcessExecutableName(p.argv[0]),
			semconv.ProcessCommandArgs(p.red.args(p.argv)...),
			semconv.ProcessExitCode(code),
			attribute.String("deploy.command.output", o.output),
			attribute.Int64("deploy.command.output_bytes", o.bytes),
		)
		if o.err != nil {
			span.RecordError(o.err)
			span.SetStatus(codes.Error, o.err.Error())
		}
	}
	return o
}

// tail keeps the last limit bytes written to it and counts them all. It
// is safe for one writer and one reader at a time.
type tail struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	total int64
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// String returns the tail; when output was dropped, it starts at the first
// whole line, so that no secret is shown cut in half.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if t.total > int64(len(t.buf)) {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// redactor hides secrets in output and arguments: the user information of
// URLs, the values of query and fragment parameters whose names suggest a
// secret, and literal strings given in Command.Redact.
type redactor struct {
	literals []string
}

// Redacted replaces what is hidden.
const Redacted = "REDACTED"

var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>` + "`" + `]+`)

// secretParam matches parameter names that carry secrets: token,
// access_token, api_key, apikey, secret, password, passwd, sig, signature,
// X-Amz-Signature, X-Amz-Credential, X-Goog-Signature, auth, session, code.
var secretParam = regexp.MustCompile(`(?i)(token|key|secret|passw|pwd|sig|credential|auth|session|^code$)`)

func (r *redactor) text(s string) string {
	if r == nil {
		return s
	}
	for _, l := range r.literals {
		if l != "" {
			s = strings.ReplaceAll(s, l, Redacted)
		}
	}
	return urlPattern.ReplaceAllStringFunc(s, redactURL)
}

func (r *redactor) args(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.text(a)
	}
	return out
}

// redactURL hides the user information of u and the values of its secret
// parameters, keeping everything else as written.
func redactURL(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	if at := strings.LastIndexByte(rest[:authEnd], '@'); at >= 0 {
		rest = Redacted + rest[at:]
	}
	if _, err := url.Parse(scheme + "://" + rest); err != nil {
		return scheme + "://" + rest
	}
	for _, sep := range []byte{'?', '#'} {
		i := strings.IndexByte(rest, sep)
		if i < 0 {
			continue
		}
		end := len(rest)
		if sep == '?' {
			if j := strings.IndexByte(rest[i:], '#'); j >= 0 {
				end = i + j
			}
		}
		params := strings.Split(rest[i+1:end], "&")
		for k, kv := range params {
			name, _, ok := strings.Cut(kv, "=")
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			if ok && secretParam.MatchString(name) {
				params[k] = kv[:strings.IndexByte(kv, '=')+1] + Redacted
			}
		}
		rest = rest[:i+1] + strings.Join(params, "&") + rest[end:]
	}
	return scheme + "://" + rest
}

// display writes argv for people, quoting the arguments a shell would split
// or expand. It is never run through a shell.
func display(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a, false)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for a POSIX shell: as it is when nothing in it is
// special (unless always), else in single quotes.
func shellQuote(s string, always bool) string {
	if !always && s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%{}", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exitText says how an outcome ended, for span events and messages.
func exitText(o outcome) string {
	if o.err == nil {
		return "exit 0"
	}
	if o.err.Signal != "" {
		return "signal " + o.err.Signal
	}
	if o.err.TimedOut {
		return "timed out"
	}
	return "exit " + strconv.Itoa(o.err.ExitCode)
}
