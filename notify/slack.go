package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy"
)

// Slack posts concise messages to a Slack incoming webhook: the release
// started, a step applied (with its exposure), a gate blocking or waiting,
// a rollback with its trigger, and the outcome with the key lines of the
// report (what was delivered, version, duration, trigger, follow-ups).
//
// Observations are posted only when the verdict is not "continue" (the
// release waits or rolls back), and phase events not at all, unless
// Verbose is set. Urgent events (a failed rollback) start with Mention.
//
// A response other than 2xx is returned as an *HTTPError, so that the
// runner retries an outage, and waits as long as Slack's rate limit asks
// (a 429 with Retry-After), but not a refusal (a revoked webhook's 404).
// A Slack is safe for concurrent use; do not change its fields while it is
// in use.
type Slack struct {
	// WebhookURL is the incoming webhook's URL. It is a secret: errors
	// never show it.
	WebhookURL string
	// Mention starts urgent messages, in Slack's syntax: "<!here>",
	// "<!channel>", "<@U024BE7LH>" for a person, "<!subteam^S0614TZR7>" for
	// a user group such as on-call. Empty mentions nobody.
	Mention string
	// Verbose also posts phase events and every observation.
	Verbose bool
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a default client.
	Client *http.Client
}

var _ deploy.Notifier = (*Slack)(nil)

// Name returns "slack".
func (*Slack) Name() string { return "slack" }

// Validate reports the first bad field: a WebhookURL that is not an
// absolute http or https URL, a Mention that is not in Slack's <…> syntax,
// or a negative Timeout.
func (s *Slack) Validate() error {
	if err := checkURL(s.WebhookURL); err != nil {
		// The URL is a secret; name the problem, not the value.
		return fmt.Errorf("notify: Slack.WebhookURL: %w", err)
	}
	if s.Mention != "" && (!strings.HasPrefix(s.Mention, "<") || !strings.HasSuffix(s.Mention, ">") || strings.ContainsAny(s.Mention[1:len(s.Mention)-1], "<> ")) {
		return fmt.Errorf(`notify: Slack.Mention %q is not a Slack mention such as "<!here>" or "<@U024BE7LH>"`, s.Mention)
	}
	if s.Timeout < 0 {
		return fmt.Errorf("notify: Slack.Timeout %v is negative", s.Timeout)
	}
	return nil
}

// Notify implements deploy.Notifier. Events that Slack skips return nil.
func (s *Slack) Notify(ctx context.Context, e deploy.Event) error {
	if err := s.Validate(); err != nil {
		return err
	}
	msg, ok := s.message(e)
	if !ok {
		return nil
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("notify: slack: encoding message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout(s.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: slack: bad WebhookURL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	_, err = send(s.Client, req, "slack", s.WebhookURL)
	return err
}

// slackMessage is an incoming-webhook payload: Text is the fallback shown
// in notifications, Blocks the message.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func section(text string) slackBlock {
	return slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: clip(text, 3000)}}
}

func contextBlock(text string) slackBlock {
	return slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: clip(text, 2000)}}}
}

// message returns the Slack message for e, or false to skip e.
func (s *Slack) message(e deploy.Event) (slackMessage, bool) {
	rel := e.Release
	what := esc(rel.Service + " " + rel.Version)
	env := esc(rel.Environment)
	var head string
	var blocks []slackBlock
	switch e.Kind {
	case deploy.EventStarted:
		head = fmt.Sprintf(":rocket: *Deploying %s* to %s", what, env)
		if rel.PreviousVersion != "" {
			head += " (from " + esc(rel.PreviousVersion) + ")"
		}
		if rel.Description != "" {
			head += "\n" + esc(rel.Description)
		}
	case deploy.EventGate:
		icon := ":hourglass_flowing_sand:"
		if strings.HasPrefix(e.Message, "blocked") {
			icon = ":no_entry:"
		}
		head = fmt.Sprintf("%s *%s* %s", icon, what, esc(e.Message))
	case deploy.EventPhase:
		if !s.Verbose {
			return slackMessage{}, false
		}
		head = fmt.Sprintf(":white_small_square: *%s* %s", what, esc(e.Message))
	case deploy.EventStep:
		head = fmt.Sprintf(":arrow_forward: *%s* at *%s* in %s", what, pct(e.Exposure), esc(stageOr(e)))
		if e.Step != "" {
			head += ": step " + esc(e.Step) + " applied"
		}
	case deploy.EventObservation:
		if e.Verdict == "continue" && !s.Verbose {
			return slackMessage{}, false
		}
		icon := ":warning:"
		switch e.Verdict {
		case "continue":
			icon = ":white_check_mark:"
		case "rollback":
			icon = ":x:"
		}
		head = fmt.Sprintf("%s *%s* at %s: *%s* — %s", icon, what, pct(e.Exposure), esc(strings.ToUpper(e.Verdict)), esc(e.Message))
		var lines []string
		for _, r := range e.Readings {
			if r.Outcome == "pass" && !s.Verbose {
				continue
			}
			lines = append(lines, fmt.Sprintf("• %s %s", outcomeMark(r.Outcome), esc(r.Reason)))
		}
		if len(lines) > 0 {
			blocks = append(blocks, section(strings.Join(lines, "\n")))
		}
	case deploy.EventRollback:
		if e.Urgent {
			head = fmt.Sprintf(":sos: *Rollback of %s in %s FAILED* — a person must act now", what, env)
		} else {
			head = fmt.Sprintf(":rewind: *Rolling back %s* in %s (exposure was %s)", what, env, pct(e.Exposure))
		}
		if e.Urgent {
			cause := strings.TrimPrefix(e.Message, "ROLLBACK FAILED: ")
			cause = strings.TrimSuffix(cause, " — a person must act now")
			blocks = append(blocks, section("> *Cause:* "+esc(cause)))
		} else {
			reason := strings.TrimPrefix(e.Message, "rolling back: ")
			blocks = append(blocks, section("> *Trigger:* "+esc(reason)))
		}
	case deploy.EventFinished:
		head = fmt.Sprintf("%s *%s*", statusIcon(e.Status), esc(e.Message))
		if lines := keyLines(e.Report); len(lines) > 0 {
			blocks = append(blocks, section(strings.Join(lines, "\n")))
		}
	default:
		head = fmt.Sprintf("*%s* %s", what, esc(e.Message))
	}
	if e.Urgent && s.Mention != "" {
		head = s.Mention + " " + head
	}
	blocks = append([]slackBlock{section(head)}, blocks...)
	if ctx := footer(e); ctx != "" {
		blocks = append(blocks, contextBlock(ctx))
	}
	return slackMessage{Text: clip(fallback(e, s.Mention), 3000), Blocks: blocks}, true
}

// fallback is the plain text shown in notifications.
func fallback(e deploy.Event, mention string) string {
	s := esc(e.Release.Service + " " + e.Release.Version + ": " + e.Message)
	if e.Urgent && mention != "" {
		s = mention + " " + s
	}
	return s
}

// footer is the context line: deployment id, stage, commit and links.
func footer(e deploy.Event) string {
	parts := []string{"deployment " + esc(e.DeploymentID)}
	if e.Stage != "" && e.Stage != e.Release.Environment {
		parts = append(parts, "stage "+esc(e.Stage))
	}
	if e.Kind == deploy.EventStarted || e.Kind == deploy.EventFinished {
		if e.Release.Commit != "" {
			parts = append(parts, "commit "+esc(e.Release.Commit))
		}
		for _, k := range slices.Sorted(maps.Keys(e.Links)) {
			if u := e.Links[k]; strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
				parts = append(parts, "<"+strings.NewReplacer("|", "%7C", ">", "%3E").Replace(u)+"|"+esc(k)+">")
			}
		}
	}
	return strings.Join(parts, " · ")
}

func stageOr(e deploy.Event) string {
	if e.Stage != "" {
		return e.Stage
	}
	return e.Release.Environment
}

func statusIcon(s deploy.Status) string {
	switch s {
	case deploy.Succeeded:
		return ":white_check_mark:"
	case deploy.RolledBack:
		return ":rewind:"
	case deploy.RollbackFailed:
		return ":sos:"
	case deploy.Blocked:
		return ":no_entry:"
	default:
		return ":x:"
	}
}

func outcomeMark(o string) string {
	switch o {
	case "fail":
		return "*FAIL*"
	case "inconclusive":
		return "?"
	default:
		return "ok"
	}
}

// keyLines picks the lines of a Report.Markdown that fit a chat message:
// what was delivered, version, duration, the rollback trigger and the
// follow-up items.
func keyLines(md string) []string {
	var out []string
	var follow []string
	sectionName := ""
	delivered := false
	for line := range strings.Lines(md) {
		line = strings.TrimRight(line, "\n")
		if h, ok := strings.CutPrefix(line, "### "); ok {
			sectionName = h
			continue
		}
		item, ok := strings.CutPrefix(line, "- ")
		if !ok {
			continue
		}
		switch sectionName {
		case "What Was Delivered":
			if !delivered {
				delivered = true
				out = append(out, "*Delivered:* "+esc(item))
			}
		case "Deployment Details":
			for _, f := range []string{"Version/Commit: ", "Duration: "} {
				if v, ok := strings.CutPrefix(item, f); ok {
					out = append(out, "*"+strings.TrimSuffix(f, ": ")+":* "+esc(v))
				}
			}
		case "Rollback":
			if v, ok := strings.CutPrefix(item, "Trigger: "); ok {
				out = append(out, "*Trigger:* "+esc(v))
			}
		case "Blocked":
			out = append(out, "*Blocked:* "+esc(item))
		case "Follow-up Items":
			item = strings.TrimPrefix(item, "[ ] ")
			if item != "None" {
				follow = append(follow, "• "+esc(item))
			}
		}
	}
	if len(follow) > 0 {
		if len(follow) > 5 {
			follow = append(follow[:5], fmt.Sprintf("• … and %d more", len(follow)-5))
		}
		out = append(out, "*Follow-ups:*")
		out = append(out, follow...)
	}
	return out
}

// esc escapes the three characters Slack's mrkdwn reserves.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
