package gate_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

const (
	secretPass  = "pa55-CI-word"
	secretToken = "tok-ghp-0123456789"
	secretQuery = "q-secret-4242"
)

func noSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, sec := range []string{secretPass, secretToken, secretQuery} {
		if strings.Contains(s, sec) {
			t.Errorf("%s shows the secret %q: %s", where, sec, s)
		}
	}
}

// A gate.CI BaseURL with user:password@ that is unreachable put the password
// in the gate's reason, and from there in the report, the state, the span,
// the log and the error of Run (issue 12).
func TestCIErrorsHideCredentials(t *testing.T) {
	for _, base := range []string{
		"http://ci:" + secretPass + "@127.0.0.1:1/api?key=" + secretQuery,
		"http://ci:" + secretPass + "@[::1/api", // does not parse
	} {
		c := &gate.CI{Owner: "o", Repo: "r", Token: secretToken, BaseURL: base}
		err := c.Check(t.Context(), dep)
		if err == nil {
			t.Fatalf("%s: no error", base)
		}
		noSecret(t, "CI.Check", err.Error())
		noSecret(t, "CI.Validate", errString(c.Validate()))
	}
	// A server that echoes the request.
	echo := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad credentials "+r.Header.Get("Authorization")+" at "+r.URL.String(), http.StatusUnauthorized)
	}))
	c := &gate.CI{Owner: "o", Repo: "r", Token: secretToken, BaseURL: "https://ghe.example/api?k=" + secretQuery, Client: echo}
	err := c.Check(t.Context(), dep)
	if err == nil {
		t.Fatal("no error")
	}
	noSecret(t, "CI.Check against an echoing server", err.Error())
}

func TestHTTPErrorsHideCredentials(t *testing.T) {
	echo := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused "+r.Header.Get("Authorization")+" at "+r.URL.String()+" \x1b[31m", http.StatusForbidden)
	}))
	h := &gate.HTTP{URL: "https://u:" + secretPass + "@checks.example/hooks/x?token=" + secretQuery,
		Header: http.Header{"Authorization": {"Bearer " + secretToken}}, Client: echo}
	err := h.Check(t.Context(), dep)
	if err == nil {
		t.Fatal("no error")
	}
	noSecret(t, "HTTP.Check", err.Error())
	noSecret(t, "HTTP.Name", h.Name())
	if strings.Contains(err.Error(), "\x1b") {
		t.Errorf("HTTP.Check shows a control character: %q", err)
	}
	if h.Name() != "http checks.example" {
		t.Errorf("Name = %q, want the host only", h.Name())
	}
	bad := &gate.HTTP{URL: "ftp://u:" + secretPass + "@x/?token=" + secretQuery}
	noSecret(t, "HTTP.Validate", errString(bad.Validate()))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

var _ deploy.Gate = (*gate.CI)(nil)
