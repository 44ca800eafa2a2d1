package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/notify"
)

func ExampleConsole_Format() {
	c := &notify.Console{Location: time.UTC}
	at := time.Date(2025, 3, 4, 10, 15, 30, 0, time.UTC)
	fmt.Print(c.Format(deploy.Event{Kind: deploy.EventStep, At: at, Phase: deploy.PhaseDeploy, Step: "25%", Exposure: 0.25,
		Message: "step 25% applied: exposure 25%, bake 10m0s"}))
	fmt.Print(c.Format(deploy.Event{Kind: deploy.EventObservation, At: at.Add(10 * time.Minute), Phase: deploy.PhaseDeploy, Step: "25%", Exposure: 0.25,
		Verdict: "rollback", Readings: []deploy.Reading{
			{Outcome: "fail", Reason: "error rate 5% > 1.5%"},
			{Outcome: "pass", Reason: "p95 130ms <= 320ms"},
		}}))
	// Output:
	// 10:15:30 →    25%  deploy 25%  step 25% applied: exposure 25%, bake 10m0s
	// 10:25:30 ·    25%  deploy 25%  ROLLBACK
	//            FAIL error rate 5% > 1.5%
	//            ok   p95 130ms <= 320ms
}

func ExampleVerifySignature() {
	body := []byte(`{"kind":"finished","status":"succeeded"}`)
	now := time.Now()
	sig, _ := notify.Sign(notify.StandardWebhooks, "s3cret", "msg_1", now, body)
	h := http.Header{}
	h.Set(notify.StandardIDHeader, "msg_1")
	h.Set(notify.StandardTimestampHeader, strconv.FormatInt(now.Unix(), 10))
	h.Set(notify.StandardSignatureHeader, sig)

	fmt.Println(notify.VerifySignature("s3cret", body, h))
	fmt.Println(notify.VerifySignature("guess", body, h))
	// Output:
	// <nil>
	// notify: bad signature: signature mismatch
}

// A receiver checks each delivery before trusting it.
func ExampleWebhook() {
	const secret = "s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifySignature(secret, body, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get(notify.EventHeader), "event")
	}))
	defer srv.Close()

	w := &notify.Webhook{URL: srv.URL, Secret: secret}
	err := w.Notify(context.Background(), deploy.Event{Kind: deploy.EventStarted, Message: "checkout v2 started"})
	fmt.Println(err)

	w.Secret = "wrong"
	err = w.Notify(context.Background(), deploy.Event{Kind: deploy.EventStarted, Message: "checkout v2 started"})
	fmt.Println(err.(*notify.HTTPError).StatusCode)
	// Output:
	// verified started event
	// <nil>
	// 401
}

// Page on-call only when a rollback fails; tell the channel everything else.
func ExampleOnlyUrgent() {
	notifiers := []deploy.Notifier{
		&notify.Slack{WebhookURL: "https://hooks.slack.com/services/T000/B000/XXXX"},
		notify.OnlyUrgent(&notify.Slack{WebhookURL: "https://hooks.slack.com/services/T000/B000/ONCALL", Mention: "<!subteam^S0614TZR7>"}),
		notify.Only(&notify.GitHub{Repository: "acme/checkout", Token: "…"}, deploy.EventStarted, deploy.EventStep, deploy.EventRollback, deploy.EventFinished),
	}
	_ = deploy.WithNotifiers(notifiers...)
	for _, n := range notifiers {
		fmt.Println(n.(interface{ Name() string }).Name())
	}
	// Output:
	// slack
	// slack
	// github
}
