package notify_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/notify"
)

const (
	hookSecret = "hmac-KEY-77aa"
	hookToken  = "tok-qqq-0099"
	slackPath  = "/services/T0001/B0001/SLACKSECRETxyz"
	ghToken    = "ghp_SECRETgithub"
)

// echo answers every request with 500 and a body that repeats what the
// request carried: its URL, its credentials and its signature.
func echo(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream failed for "+r.URL.String()+" auth="+r.Header.Get("Authorization")+" sig="+r.Header.Get(notify.StandardSignatureHeader)+" \x1b[2J", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Notifier error bodies that echoed the URL were stored in the outbox, the
// spans and the logs (issue 12).
func TestNotifierErrorsHideSecrets(t *testing.T) {
	srv := echo(t)
	notifiers := map[string]deploy.Notifier{
		"webhook": &notify.Webhook{URL: srv.URL + "/hook?token=" + hookToken, Secret: hookSecret, Header: http.Header{"Authorization": {"Bearer " + hookToken}}},
		"slack":   &notify.Slack{WebhookURL: srv.URL + slackPath},
		"github":  &notify.GitHub{Repository: "o/r", Token: ghToken, BaseURL: srv.URL},
		"dead":    &notify.Webhook{URL: "http://u:" + hookToken + "@127.0.0.1:1" + slackPath + "?token=" + hookToken, Secret: hookSecret},
	}
	for name, n := range notifiers {
		err := n.Notify(context.Background(), events()["finished"])
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, s := range []string{hookSecret, hookToken, "SLACKSECRETxyz", ghToken, "\x1b"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error shows %q: %v", name, s, err)
			}
		}
	}
}

// ESC and CR in an event reached the Console (issue 12).
func TestConsoleRemovesControlCharacters(t *testing.T) {
	var b bytes.Buffer
	c := &notify.Console{W: &b, Report: true}
	e := events()["finished"]
	e.Message = "done\r\x1b[2Jfake: rolled back \u202egnp.exe"
	e.Report = "## Completed\n\x1b]0;title\x07- ok"
	if err := c.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.ContainsAny(out, "\r\x1b\x07\u202e") {
		t.Errorf("console output %q has control characters", out)
	}
}
