package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/deploykit/deploy/notify"
)

// The example of the Standard Webhooks specification, so that its
// ready-made verifiers accept what Webhook sends.
func TestSignStandardWebhooksVector(t *testing.T) {
	got, err := notify.Sign(notify.StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// VerifySignature("", …) accepted a forgery signed with an empty key
// (issue 12).
func TestEmptySecretIsRefusedOnBothSides(t *testing.T) {
	body := []byte(`{"kind":"finished","status":"succeeded"}`)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	m := hmac.New(sha256.New, nil)
	m.Write([]byte(ts + "."))
	m.Write(body)
	forged := http.Header{}
	forged.Set(notify.TimestampHeader, ts)
	forged.Set(notify.DeliveryHeader, "msg_1")
	forged.Set(notify.SignatureHeader, "sha256="+hex.EncodeToString(m.Sum(nil)))
	if err := notify.VerifySignature("", body, forged); !errors.Is(err, notify.ErrSignature) || !errors.Is(err, notify.ErrEmptySecret) {
		t.Errorf("VerifySignature with an empty secret = %v, want ErrSignature and ErrEmptySecret", err)
	}
	for _, s := range []notify.Scheme{notify.StandardWebhooks, notify.DeployHeaders} {
		if _, err := notify.Sign(s, "", "msg_1", now, body); !errors.Is(err, notify.ErrEmptySecret) {
			t.Errorf("Sign(%d) with an empty secret = %v", s, err)
		}
	}
	if _, err := notify.Sign(notify.StandardWebhooks, "whsec_", "msg_1", now, body); !errors.Is(err, notify.ErrEmptySecret) {
		t.Errorf(`Sign with "whsec_" = %v, want ErrEmptySecret`, err)
	}
	w := &notify.Webhook{URL: "https://hooks.example/x"}
	if err := w.Notify(context.Background(), events()["started"]); !errors.Is(err, notify.ErrEmptySecret) {
		t.Errorf("Notify without a Secret = %v, want ErrEmptySecret", err)
	}
}

// The delivery id was not signed: a receiver that drops duplicates by id
// could be made to drop a real event, or to take a replay for a new one
// (issue 12).
func TestDeliveryIDIsSigned(t *testing.T) {
	for _, scheme := range []notify.Scheme{notify.StandardWebhooks, notify.DeployHeaders} {
		rcv := newReceiver(t)
		w := &notify.Webhook{URL: rcv.srv.URL, Secret: notify.NewSecret(), Scheme: scheme}
		if err := w.Notify(context.Background(), events()["started"]); err != nil {
			t.Fatal(err)
		}
		d := rcv.deliveries()[0]
		if err := notify.VerifySignature(w.Secret, d.Body, d.Header); err != nil {
			t.Fatalf("scheme %d: %v", scheme, err)
		}
		idHeader := notify.StandardIDHeader
		if scheme == notify.DeployHeaders {
			idHeader = notify.DeliveryHeader
		}
		d.Header.Set(idHeader, "msg_forged")
		if err := notify.VerifySignature(w.Secret, d.Body, d.Header); !errors.Is(err, notify.ErrSignature) {
			t.Errorf("scheme %d: a forged id verified: %v", scheme, err)
		}
	}
}

func TestVerifyStandardAcceptsRotatedSignatures(t *testing.T) {
	body := []byte(`{}`)
	now := time.Now()
	old, _ := notify.Sign(notify.StandardWebhooks, "old-secret", "msg_1", now, body)
	cur, _ := notify.Sign(notify.StandardWebhooks, "new-secret", "msg_1", now, body)
	h := http.Header{}
	h.Set(notify.StandardIDHeader, "msg_1")
	h.Set(notify.StandardTimestampHeader, strconv.FormatInt(now.Unix(), 10))
	h.Set(notify.StandardSignatureHeader, old+" "+cur)
	if err := notify.VerifySignature("new-secret", body, h); err != nil {
		t.Errorf("VerifySignature: %v", err)
	}
}

// FuzzVerifySignature checks any headers and body: no panic, and nothing
// verifies that was not signed with the secret.
func FuzzVerifySignature(f *testing.F) {
	f.Add("msg_1", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`), false)
	f.Add("", "x", "sha256=zz", []byte(nil), true)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, deploy bool) {
		h := http.Header{}
		if deploy {
			h.Set(notify.DeliveryHeader, id)
			h.Set(notify.TimestampHeader, ts)
			h.Set(notify.SignatureHeader, sig)
		} else {
			h.Set(notify.StandardIDHeader, id)
			h.Set(notify.StandardTimestampHeader, ts)
			h.Set(notify.StandardSignatureHeader, sig)
		}
		if notify.VerifySignature("fuzz-secret", body, h) == nil {
			t.Fatalf("verified unsigned headers %v", h)
		}
	})
}
