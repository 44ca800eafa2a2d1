package monitor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/deploykit/deploy/monitor"
)

// A probe URL template http://{{.Service}}.internal/health with the service
// "127.0.0.1:PORT#" sent the request, and its Authorization header, to
// 127.0.0.1:PORT (issue 12).
func TestProbeURLTemplateRefusesAnotherHost(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	for _, tmpl := range []string{
		"http://{{.Service}}.internal/health",
		"http://{{.Service}}/health",
		"http://{{.Service}}.internal:8080/health",
	} {
		for _, svc := range []string{u.Host + "#", u.Host + "/x?", "user:pw@" + u.Host + "/", "[::1]", "a%2e"} {
			tg := target
			tg.Service = svc
			p := &monitor.Probe{URL: tmpl, Header: http.Header{"Authorization": {"Bearer tok-secret"}}}
			o, err := p.Observe(context.Background(), tg)
			if err == nil {
				t.Errorf("%s with service %q: no error, observation %+v", tmpl, svc, o)
			} else if strings.Contains(err.Error(), "tok-secret") {
				t.Errorf("error shows the token: %v", err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's server got %d requests", n)
	}
}

func TestProbeURLTemplateEscapesPathAndQuery(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.RawPath + " " + r.URL.RawQuery }))
	defer srv.Close()
	tg := target
	tg.Service = "a/../b"
	tg.Version = "v2&admin=1#"
	p := &monitor.Probe{URL: srv.URL + "/{{.Service}}/health?v={{.Version}}"}
	if _, err := p.Observe(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if s, want := <-got, "/a%2F..%2Fb/health v=v2%26admin%3D1%23"; s != want {
		t.Errorf("request %q, want %q", s, want)
	}
	tg.Service = ".."
	if _, err := p.Observe(context.Background(), tg); err == nil {
		t.Error(`service ".." as a path segment: no error`)
	}
}

func TestProbeURLTemplateNeedsLiteralSchemeAndPort(t *testing.T) {
	for _, u := range []string{"{{.Service}}://x/", "https://x:{{.Service}}/", "https://u:p@{{.Service}}/"} {
		if err := (&monitor.Probe{URL: u}).Validate(); err == nil {
			t.Errorf("Validate(%q): no error", u)
		}
	}
}

// A probe URL with ?token= put the token in the default check name and in
// the error detail, and so in the report and the state (issue 12).
func TestProbeNameAndDetailHideURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token "+r.URL.Query().Get("token")+" for "+r.URL.String(), http.StatusForbidden)
	}))
	defer srv.Close()
	p := &monitor.Probe{URL: srv.URL + "/health?token=s3cr3t-tok"}
	o, err := p.Observe(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, o)
	if strings.Contains(c.Name+c.Detail, "s3cr3t-tok") || !strings.Contains(c.Name, "token=REDACTED") {
		t.Errorf("check = %+v", c)
	}
	dead := &monitor.Probe{URL: "http://user:pa55word@127.0.0.1:1/health?token=s3cr3t-tok"}
	o, err = dead.Observe(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	c = check(t, o)
	if s := c.Name + c.Detail; strings.Contains(s, "s3cr3t-tok") || strings.Contains(s, "pa55word") {
		t.Errorf("unreachable: check = %+v", c)
	}
}

// FuzzProbeURLTemplate renders URL templates with any release fields: the
// result keeps the template's scheme, host (suffix) and port, and a field
// never adds a path segment, a query key or a fragment.
func FuzzProbeURLTemplate(f *testing.F) {
	f.Add("checkout", "v2", "prod")
	f.Add("127.0.0.1:80#", "../approvals/v1", "a@b")
	f.Add("x/", "?", "%2F")
	f.Fuzz(func(t *testing.T, service, version, env string) {
		tg := monitor.Target{Service: service, Version: version, Environment: env}
		for _, tmpl := range []string{
			"https://{{.Service}}.internal:8443/{{.Environment}}/health?v={{.Version}}",
			"http://probe.example/{{.Service}}/{{.Version}}",
		} {
			u, err := monitor.RenderURL(tmpl, tg)
			if err != nil {
				continue
			}
			pu, err := url.Parse(u)
			if err != nil {
				t.Fatalf("%q rendered %q, which does not parse", tmpl, u)
			}
			host := pu.Hostname()
			switch {
			case pu.User != nil, pu.Fragment != "":
				t.Fatalf("%q rendered %q", tmpl, u)
			case strings.HasPrefix(tmpl, "https") && (pu.Scheme != "https" || pu.Port() != "8443" || !strings.HasSuffix(host, ".internal") || strings.Count(pu.EscapedPath(), "/") != 2 || len(pu.Query()) != 1):
				t.Fatalf("%q rendered %q", tmpl, u)
			case strings.HasPrefix(tmpl, "http:") && (host != "probe.example" || pu.Port() != "" || strings.Count(pu.EscapedPath(), "/") != 2 || pu.RawQuery != ""):
				t.Fatalf("%q rendered %q", tmpl, u)
			}
		}
	})
}
