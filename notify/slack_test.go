package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy/notify"
)

// slackPayload is what an incoming webhook receives.
type slackPayload struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"elements"`
	} `json:"blocks"`
}

// lines flattens a payload's blocks to text, one block a line.
func (p slackPayload) lines() []string {
	var out []string
	for _, b := range p.Blocks {
		switch {
		case b.Text != nil:
			if b.Text.Type != "mrkdwn" {
				out = append(out, "bad text type "+b.Text.Type)
			}
			out = append(out, b.Type+": "+b.Text.Text)
		default:
			for _, e := range b.Elements {
				out = append(out, b.Type+": "+e.Text)
			}
		}
	}
	return out
}

func postSlack(t *testing.T, s *notify.Slack, rcv *receiver, event string) (slackPayload, bool) {
	t.Helper()
	n := len(rcv.deliveries())
	if err := s.Notify(context.Background(), events()[event]); err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	got := rcv.deliveries()
	if len(got) == n {
		return slackPayload{}, false
	}
	var p slackPayload
	if err := json.Unmarshal(got[n].Body, &p); err != nil {
		t.Fatal(err)
	}
	if ct := got[n].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return p, true
}

func TestSlackMessages(t *testing.T) {
	rcv := newReceiver(t)
	s := &notify.Slack{WebhookURL: rcv.srv.URL + "/services/T000/B000/XXXX", Mention: "<!subteam^S0614TZR7>"}
	const footer = "context: deployment checkout-production-1"
	const links = " · commit abc123 · <https://ci.example.com/run/7|log> · <https://github.com/acme/checkout/issues/12|ticket>"
	for _, tc := range []struct {
		event string
		want  []string // nil: skipped
	}{
		{"started", []string{"section: :rocket: *Deploying checkout v2* to production (from v1)\nFaster checkout", footer + links}},
		{"waiting", []string{"section: :hourglass_flowing_sand: *checkout v2* waiting: window: closed until Monday 09:00", footer}},
		{"blocked", []string{"section: :no_entry: *checkout v2* blocked by gate ci: 2 checks failing", footer}},
		{"phase", nil},
		{"step", []string{"section: :arrow_forward: *checkout v2* at *25%* in production: step 25% applied", footer}},
		{"healthy", nil},
		{"breach", []string{
			"section: :x: *checkout v2* at 25%: *ROLLBACK* — error rate 5% &gt; 1.5%",
			"section: • *FAIL* error rate 5% &gt; 1.5%\n• ? p95: no data",
			footer}},
		{"rollback", []string{
			"section: :rewind: *Rolling back checkout v2* in production (exposure was 25%)",
			"section: > *Trigger:* error rate 5% &gt; 1.5%",
			footer}},
		{"rollback failed", []string{
			"section: <!subteam^S0614TZR7> :sos: *Rollback of checkout v2 in production FAILED* — a person must act now",
			"section: > *Cause:* strategy test rollback: boom",
			footer}},
		{"finished", []string{
			"section: :rewind: *checkout v2 to production: rolled back — error rate 5% &gt; 1.5%*",
			"section: *Delivered:* Nothing: checkout v2 was rolled back\n" +
				"*Version/Commit:* v2 / abc123\n" +
				"*Duration:* 25m0s\n" +
				"*Trigger:* error rate 5% &gt; 1.5% (breach)\n" +
				"*Follow-ups:*\n" +
				"• Document what went wrong: error rate 5% &gt; 1.5%\n" +
				"• Investigate root cause\n" +
				"• Plan fix before re-attempting",
			footer + links}},
		{"succeeded", []string{"section: :white_check_mark: *checkout v2 to production: succeeded*", footer + links}},
		{"finished urgent", []string{"section: <!subteam^S0614TZR7> :sos: *checkout v2 to production: rollback failed — boom*", footer + links}},
	} {
		p, ok := postSlack(t, s, rcv, tc.event)
		if tc.want == nil {
			if ok {
				t.Errorf("%s: posted %q, want it skipped", tc.event, p.lines())
			}
			continue
		}
		if diff := cmp.Diff(tc.want, p.lines()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.event, diff)
		}
		if p.Text == "" {
			t.Errorf("%s: no fallback text", tc.event)
		}
		e := events()[tc.event]
		if mentioned := strings.HasPrefix(p.Text, s.Mention); mentioned != e.Urgent {
			t.Errorf("%s: fallback %q: mention %v, want %v", tc.event, p.Text, mentioned, e.Urgent)
		}
	}
}

func TestSlackVerbose(t *testing.T) {
	rcv := newReceiver(t)
	s := &notify.Slack{WebhookURL: rcv.srv.URL, Verbose: true}
	p, ok := postSlack(t, s, rcv, "healthy")
	if !ok {
		t.Fatal("Verbose skipped a healthy observation")
	}
	want := []string{
		"section: :white_check_mark: *checkout v2* at 25%: *CONTINUE* — all triggers pass",
		"section: • ok error rate 0.1% &lt;= 1.5%",
		"context: deployment checkout-production-1",
	}
	if diff := cmp.Diff(want, p.lines()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, ok := postSlack(t, s, rcv, "phase"); !ok {
		t.Error("Verbose skipped a phase event")
	}
	p, _ = postSlack(t, s, rcv, "rollback failed")
	if strings.Contains(p.Text, "<!") {
		t.Errorf("mention with no Mention set: %q", p.Text)
	}
}

func TestSlackEscapes(t *testing.T) {
	rcv := newReceiver(t)
	s := &notify.Slack{WebhookURL: rcv.srv.URL}
	e := events()["step"]
	e.Release.Service = "<!channel> & co"
	if err := s.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var p slackPayload
	json.Unmarshal(rcv.deliveries()[0].Body, &p)
	for _, l := range append(p.lines(), p.Text) {
		if strings.Contains(l, "<!channel>") {
			t.Errorf("unescaped mention from release data: %q", l)
		}
	}
	if !strings.Contains(p.lines()[0], "&lt;!channel&gt; &amp; co v2") {
		t.Errorf("escaped service not shown: %q", p.lines()[0])
	}
}

func TestSlackErrors(t *testing.T) {
	rcv := newReceiver(t)
	rcv.status = http.StatusNotFound
	s := &notify.Slack{WebhookURL: rcv.srv.URL + "/services/T000/B000/XXXX"}
	err := s.Notify(context.Background(), events()["step"])
	var he *notify.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 || he.Notifier != "slack" || he.Temporary() {
		t.Fatalf("Notify = %#v, want a permanent 404 *HTTPError", err)
	}
	if strings.Contains(err.Error(), "XXXX") {
		t.Errorf("error shows the webhook URL: %v", err)
	}
	rcv.status = http.StatusTooManyRequests
	if err := s.Notify(context.Background(), events()["step"]); !errors.As(err, &he) || !he.Temporary() {
		t.Errorf("429: %v, want a temporary *HTTPError", err)
	}
	// Skipped events never reach the network.
	s.WebhookURL = "https://hooks.slack.invalid/services/T000/B000/XXXX"
	s.Client = &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
		t.Error("skipped event was posted")
		return respond(200), nil
	})}
	if err := s.Notify(context.Background(), events()["healthy"]); err != nil {
		t.Error(err)
	}
}

func TestSlackValidate(t *testing.T) {
	for _, tc := range []struct {
		s    notify.Slack
		want string
	}{
		{notify.Slack{}, `notify: Slack.WebhookURL: scheme "" is not http or https`},
		{notify.Slack{WebhookURL: "hooks.slack.com/services/T000/B000/XXXX"}, `notify: Slack.WebhookURL: scheme "" is not http or https`},
		{notify.Slack{WebhookURL: "https://hooks.slack.com/x", Mention: "@oncall"}, `notify: Slack.Mention "@oncall" is not a Slack mention such as "<!here>" or "<@U024BE7LH>"`},
		{notify.Slack{WebhookURL: "https://hooks.slack.com/x", Timeout: -time.Second}, "notify: Slack.Timeout -1s is negative"},
		{notify.Slack{WebhookURL: "https://hooks.slack.com/x", Mention: "<!here>"}, ""},
	} {
		got := ""
		if err := tc.s.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
		if strings.Contains(got, "XXXX") {
			t.Errorf("Validate shows the webhook URL: %s", got)
		}
	}
	if (&notify.Slack{}).Name() != "slack" {
		t.Error(`Name() != "slack"`)
	}
}

// TestSlackRetryAfter: a 429 with Retry-After (seconds, or an HTTP date)
// tells the runner how long to wait, through HTTPError.RetryAfter.
func TestSlackRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"30", 30 * time.Second},
		{"0", 0},
		{"soon", 0},
		{"", 0},
		{time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat), 2 * time.Minute},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	} {
		s := &notify.Slack{WebhookURL: "https://hooks.slack.invalid/services/T000/B000/XXXX",
			Client: &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
				r := respond(http.StatusTooManyRequests)
				r.Header.Set("Retry-After", tc.header)
				return r, nil
			})}}
		err := s.Notify(context.Background(), events()["step"])
		var he *notify.HTTPError
		if !errors.As(err, &he) || !he.Temporary() {
			t.Fatalf("Retry-After %q: %v, want a temporary *HTTPError", tc.header, err)
		}
		// An HTTP date has a one-second resolution.
		if got := he.RetryAfter(); got < tc.want-time.Second || got > tc.want {
			t.Errorf("Retry-After %q: RetryAfter() = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestRetryAfterMakesA403Temporary: GitHub answers its secondary rate limit
// with 403 and Retry-After; that is worth retrying, a bare 403 is not.
func TestRetryAfterMakesA403Temporary(t *testing.T) {
	if (&notify.HTTPError{StatusCode: 403}).Temporary() {
		t.Error("a bare 403 is temporary")
	}
	if !(&notify.HTTPError{StatusCode: 403, Retry: time.Minute}).Temporary() {
		t.Error("a 403 with Retry-After is not temporary")
	}
}
