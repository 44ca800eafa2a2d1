package gate_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/deploykit/deploy/gate"
)

// FuzzParseDecision reads any approval file: a decision or an error, never
// a panic, and a decision that shows no control characters and reads back.
func FuzzParseDecision(f *testing.F) {
	for _, s := range []string{"approved by alice", "rejected by bob: too risky", "pending", "", "approved", "APPROVED BY x\ny", "rejected: \x1b[2J", "approved by \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d, err := gate.ParseDecision(text)
		if err != nil {
			return
		}
		if strings.ContainsFunc(d.By+d.Reason, unicode.IsControl) || !utf8.ValidString(d.By+d.Reason) {
			t.Fatalf("decision %+v shows control characters or bad UTF-8", d)
		}
		if d.Verdict == gate.Approved && d.By == "" {
			t.Fatalf("approval %q without a name", text)
		}
	})
}

// FuzzUpstreamAnswer gives the CI and HTTP gates any answer: they pass,
// block or ask to retry, never panic, and their reasons stay one bounded,
// printable line.
func FuzzUpstreamAnswer(f *testing.F) {
	f.Add(200, []byte(`{"state":"success","statuses":[{"state":"success","context":"ci/test"}]}`))
	f.Add(200, []byte(`{"state":"failure","statuses":[null,{"state":"failure","context":"\u001b[2J","description":"x"}]}`))
	f.Add(200, []byte(`null`))
	f.Add(200, []byte(`{"state":"pending","statuses":null}`))
	f.Add(500, []byte("<html>\r\n\x00"))
	f.Add(412, []byte(strings.Repeat("é", 3000)))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 200 || status > 599 {
			status = 200
		}
		client := memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			w.Write(body)
		}))
		ci := &gate.CI{Owner: "o", Repo: "r", Client: client}
		h := &gate.HTTP{URL: "https://checks.example/x", Client: client, Attempts: 1}
		for _, err := range []error{ci.Check(t.Context(), dep), h.Check(t.Context(), dep)} {
			if err == nil {
				continue
			}
			msg := err.Error()
			if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\x1b\r\n") || len(msg) > 16<<10 {
				t.Fatalf("reason %q is not one bounded printable line", msg)
			}
		}
	})
}
