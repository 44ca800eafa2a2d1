package redact_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deploykit/deploy/internal/redact"
)

func TestURLDropsUserinfoQueryValuesAndFragment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://bob:hunter2@ci.example/x?token=abc&v=1#frag", "https://ci.example/x?token=REDACTED&v=REDACTED"},
		{"https://TOKEN@github.com/o/r", "https://github.com/o/r"},
		{"http://h:8080/p", "http://h:8080/p"},
		{"http://u:p@bad host/%zz?k=v", "http://bad host/%zz?REDACTED"},
	} {
		if got := redact.URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTextRedactsURLsAndSecrets(t *testing.T) {
	in := `GET https://bob:hunter2@ci.example/status?token=s3cr3t: dial tcp: refused (key "k3y-value", url-escaped k3y%2Dvalue)`
	got := redact.Text(in, "k3y-value", "")
	for _, leak := range []string{"hunter2", "s3cr3t", "k3y-value", "bob"} {
		if strings.Contains(got, leak) {
			t.Errorf("Text kept %q: %s", leak, got)
		}
	}
	if !strings.Contains(got, "https://ci.example/status?token=REDACTED:") {
		t.Errorf("Text = %s", got)
	}
}

func TestTextMasksSecretURLEvenRedacted(t *testing.T) {
	hook := "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
	for _, in := range []string{hook, "posting to " + hook + " failed", "posting to hooks.slack.com/services/T000/B000/XXXXSECRET"} {
		got := redact.Text(in, hook)
		if strings.Contains(got, "XXXXSECRET") {
			t.Errorf("Text(%q) = %q", in, got)
		}
	}
}

func TestBodyIsOneBoundedLine(t *testing.T) {
	body := []byte("error\x1b[31m: token=abcd\r\nsee https://u:pw@x.example/?k=v " + strings.Repeat("é", 300))
	got := redact.Body(body, 100, "abcd")
	if len(got) > 100 || !utf8.ValidString(got) || strings.ContainsAny(got, "\x1b\r\n") {
		t.Errorf("Body = %q (%d bytes)", got, len(got))
	}
	if strings.Contains(got, "abcd") || strings.Contains(got, "pw") {
		t.Errorf("Body leaked: %q", got)
	}
}

func TestClipKeepsRunes(t *testing.T) {
	for n := range 12 {
		if got := redact.Clip("échéance", n); !utf8.ValidString(got) || len(got) > max(n, len("…")) {
			t.Errorf("Clip(%d) = %q", n, got)
		}
	}
}

func TestErrorKeepsChain(t *testing.T) {
	base := fmt.Errorf("open https://u:pw@h/x: %w", fs.ErrNotExist)
	err := redact.Error(base)
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "pw") {
		t.Errorf("Error = %v", err)
	}
	if redact.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestHeaderSecrets(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer tok-123"}, "Accept": {"application/json"}, "X-Api-Key": {"kkkk"}}
	got := strings.Join(redact.HeaderSecrets(h), " ")
	for _, want := range []string{"Bearer tok-123", "tok-123", "kkkk"} {
		if !strings.Contains(got, want) {
			t.Errorf("HeaderSecrets missing %q: %s", want, got)
		}
	}
	if strings.Contains(got, "application/json") {
		t.Errorf("HeaderSecrets took Accept: %s", got)
	}
}

func FuzzText(f *testing.F) {
	f.Add("https://u:p@h/x?t=v#f", "p")
	f.Add("no url here", "secret")
	f.Fuzz(func(t *testing.T, s, secret string) {
		got := redact.Text(s, secret)
		if len(secret) >= 4 && !strings.Contains(redact.Mask, secret) && strings.Contains(got, secret) && !strings.Contains(s, redact.Mask) {
			// A secret can reappear only when the masks around it spell it.
			if !strings.Contains(strings.ReplaceAll(got, redact.Mask, ""), secret) {
				return
			}
			t.Errorf("Text(%q, %q) = %q", s, secret, got)
		}
	})
}
