// Package notify tells people what a release is doing; each notifier
// implements deploy.Notifier.
//
//   - [Log]: structured events on a *slog.Logger.
//   - [Console]: concise progress lines with timestamps for a terminal.
//   - [Webhook]: each event as JSON in a signed POST — Standard Webhooks
//     (webhook-id, webhook-timestamp, webhook-signature) by default, or the
//     X-Deploy-* headers; the signature covers the delivery id, the time and
//     the body, and empty secrets are refused; receivers check it with
//     [VerifySignature] or any Standard Webhooks verifier.
//   - [Slack]: concise messages on an incoming webhook, mentioning on-call
//     for urgent events.
//   - [GitHub]: a GitHub deployment with a status per step and outcome, and
//     the report commented on the release's issue or pull request.
//
// [Only] and [OnlyUrgent] wrap a notifier to receive some events only.
//
// The runner delivers events from an outbox kept in the release's state,
// asynchronously, with retries and backoff, one at a time and in order per
// notifier, so a notifier never blocks or fails a release. Notify should
// return an error when the event was not delivered, so that it is retried.
// The HTTP notifiers bound each request with their Timeout and return an
// [*HTTPError] for a response other than 2xx; their errors name the host,
// never the URL, which may hold a secret, and the response bodies they carry
// are cut, put on one line and redacted of the notifier's secrets. [Console]
// and [Log] remove control characters and URL credentials from what they
// print.
package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Log writes each event as one structured record on a *slog.Logger: info
// for progress, warn for rollbacks, error for urgent events.
type Log struct {
	Logger *slog.Logger
}

var _ deploy.Notifier = Log{}

// Name returns "log".
func (Log) Name() string { return "log" }

// Notify implements deploy.Notifier.
func (l Log) Notify(ctx context.Context, e deploy.Event) error {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	level := slog.LevelInfo
	switch {
	case e.Urgent:
		level = slog.LevelError
	case e.Kind == deploy.EventRollback, e.Verdict == "rollback":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("event", string(e.Kind)),
		slog.String(string(semconv.DeploymentIDKey), e.DeploymentID),
		slog.String(string(semconv.ServiceNameKey), e.Release.Service),
		slog.String(string(semconv.ServiceVersionKey), e.Release.Version),
		slog.String(string(semconv.DeploymentEnvironmentNameKey), e.Release.Environment),
		slog.String("phase", string(e.Phase)),
		slog.Float64("exposure", e.Exposure),
	}
	if e.Stage != "" {
		attrs = append(attrs, slog.String("stage", e.Stage))
	}
	if e.Step != "" {
		attrs = append(attrs, slog.String("step", e.Step))
	}
	if e.Verdict != "" {
		attrs = append(attrs, slog.String("verdict", e.Verdict))
	}
	if e.Kind == deploy.EventFinished {
		attrs = append(attrs, slog.String("status", string(e.Status)))
	}
	lg.LogAttrs(ctx, level, redact.Text(e.Message), attrs...)
	return nil
}

// Console writes concise, human progress lines with timestamps: phase,
// step, exposure, the key metrics against their thresholds, and the verdict.
// With Report set, the Markdown report follows the final line.
//
// It prints every event it is given. The runner sends an observation event
// only when it matters to people: a verdict other than continue, the one
// that completes a step's bake, the post-deployment checks, and the first
// and last of each watch window. So a step observed four times shows once,
// as it is promoted, unless something went wrong.
type Console struct {
	W io.Writer
	// Report prints the Markdown report when the release finishes.
	Report bool
	// Location for timestamps; nil means time.Local.
	Location *time.Location

	mu sync.Mutex
}

var _ deploy.Notifier = (*Console)(nil)

// Name returns "console".
func (*Console) Name() string { return "console" }

// Notify implements deploy.Notifier.
func (c *Console) Notify(ctx context.Context, e deploy.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.W, c.Format(e))
	return err
}

// Format returns the lines Notify writes for e.
func (c *Console) Format(e deploy.Event) string {
	loc := c.Location
	if loc == nil {
		loc = time.Local
	}
	ts := e.At.In(loc).Format("15:04:05")
	var b strings.Builder
	icon := map[deploy.EventKind]string{
		deploy.EventStarted: "▶", deploy.EventGate: "□", deploy.EventPhase: "■", deploy.EventStep: "→",
		deploy.EventObservation: "·", deploy.EventRollback: "↩", deploy.EventFinished: "●",
		deploy.EventWaiting: "‖", deploy.EventDecision: "✋", deploy.EventAnalysis: "≈",
	}[e.Kind]
	if e.Urgent {
		icon = "!!"
	}
	where := string(e.Phase)
	if e.Step != "" {
		where += " " + e.Step
	}
	where, msg := printable(where), printable(e.Message)
	fmt.Fprintf(&b, "%s %s %6s  %s  %s", ts, icon, pct(e.Exposure), where, msg)
	if e.Kind == deploy.EventObservation {
		b.Reset()
		verdict := strings.ToUpper(e.Verdict)
		fmt.Fprintf(&b, "%s %s %6s  %s  %s", ts, icon, pct(e.Exposure), where, verdict)
		for _, r := range e.Readings {
			mark := "ok"
			switch r.Outcome {
			case "fail":
				mark = "FAIL"
			case "inconclusive":
				mark = "?"
			}
			fmt.Fprintf(&b, "\n           %-4s %s", mark, printable(r.Reason))
		}
	}
	b.WriteString("\n")
	if e.Kind == deploy.EventFinished && c.Report && e.Report != "" {
		b.WriteString("\n" + printableLines(e.Report))
	}
	return b.String()
}

func pct(f float64) string {
	s := fmt.Sprintf("%.1f", f*100)
	s = strings.TrimSuffix(s, ".0")
	return s + "%"
}

// printable makes text one terminal-safe line: URLs redacted, control
// characters (ESC, CR, newlines) and bidirectional overrides removed, so
// that a field cannot move the cursor, rewrite earlier lines or add lines.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(redact.Text(s), "\uFFFD"))
}

// printableLines is printable for each line of a multi-line text.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}
