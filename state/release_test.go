package state_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deploykit/deploy/state"
)

func TestReleaseValidateAccepts(t *testing.T) {
	for _, r := range []state.Release{
		{Service: "checkout", Version: "v2"},
		{Service: "checkout-api_2.eu", Version: "1.2.3-rc.1+build.7", PreviousVersion: "1.2.2", Environment: "prod-eu",
			Commit: "refs/heads/feature/x", Description: "Faster checkout.\n\tÉchéance: today",
			Links: map[string]string{"Design doc": "https://docs.example/d?id=1", "tasks": "docs/stories/checkout/tasks.md"}, Labels: map[string]string{"team": "pay", "app.kubernetes.io/name": "checkout"}},
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
}

// The File store refused these with errors that did not wrap ErrInvalid nor
// name the field; other stores accepted them (issue 12).
func TestReleaseValidateRefusesUnsafeFields(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		r     state.Release
		field string
	}{
		{state.Release{Version: "v2"}, "Service"},
		{state.Release{Service: "..", Version: "v2"}, "Service"},
		{state.Release{Service: ".", Version: "v2"}, "Service"},
		{state.Release{Service: ".x", Version: "v2"}, "Service"},
		{state.Release{Service: "a\x00b", Version: "v2"}, "Service"},
		{state.Release{Service: long, Version: "v2"}, "Service"},
		{state.Release{Service: "a/b", Version: "v2"}, "Service"},
		{state.Release{Service: `a\b`, Version: "v2"}, "Service"},
		{state.Release{Service: "svc\x1b[31m", Version: "v2"}, "Service"},
		{state.Release{Service: "127.0.0.1:80#", Version: "v2"}, "Service"},
		{state.Release{Service: "s", Version: ""}, "Version"},
		{state.Release{Service: "s", Version: `v2",version=~".*`}, "Version"},
		{state.Release{Service: "s", Version: "../approvals/v1"}, "Version"},
		{state.Release{Service: "s", Version: ".."}, "Version"},
		{state.Release{Service: "s", Version: "v2", Environment: "prod/eu"}, "Environment"},
		{state.Release{Service: "s", Version: "v2", Environment: ".."}, "Environment"},
		{state.Release{Service: "s", Version: "v2", PreviousVersion: "v1\r"}, "PreviousVersion"},
		{state.Release{Service: "s", Version: "v2", Commit: "a/../b"}, "Commit"},
		{state.Release{Service: "s", Version: "v2", Description: "ok\x1b]0;pwned\x07"}, "Description"},
		{state.Release{Service: "s", Version: "v2", Description: "a\rb"}, "Description"},
		{state.Release{Service: "s", Version: "v2", Description: "\xff"}, "Description"},
		{state.Release{Service: "s", Version: "v2", Description: strings.Repeat("x", state.MaxDescriptionLen+1)}, "Description"},
		{state.Release{Service: "s", Version: "v2", Links: map[string]string{"pr": "javascript:alert(1)"}}, `Links["pr"]`},
		{state.Release{Service: "s", Version: "v2", Links: map[string]string{"pr": "https://u:p@h/x"}}, `Links["pr"]`},
		{state.Release{Service: "s", Version: "v2", Links: map[string]string{"pr": "//evil.example/x"}}, `Links["pr"]`},
		{state.Release{Service: "s", Version: "v2", Links: map[string]string{"pr": "data:text/html,x"}}, `Links["pr"]`},
		{state.Release{Service: "s", Version: "v2", Links: map[string]string{"](x)": "https://h/x"}}, `Links["](x)"]`},
		{state.Release{Service: "s", Version: "v2", Labels: map[string]string{"team": "a\nb"}}, `Labels["team"]`},
		{state.Release{Service: "s", Version: "v2", Labels: map[string]string{"": "x"}}, `Labels[""]`},
	} {
		err := tc.r.Validate()
		if !errors.Is(err, state.ErrInvalid) {
			t.Errorf("Validate(%q/%q) = %v, want ErrInvalid", tc.r.Service, tc.r.Version, err)
			continue
		}
		var fe *state.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%q/%q) = %v, want field %s", tc.r.Service, tc.r.Version, err, tc.field)
		}
		if msg := err.Error(); !strings.Contains(msg, "Release."+tc.field) || strings.ContainsAny(msg, "\x00\x1b\r\n") || !utf8.ValidString(msg) {
			t.Errorf("message %q does not name Release.%s or shows raw control characters", msg, tc.field)
		}
	}
}

// FuzzReleaseValidate checks that an accepted release is safe wherever its
// fields go: a file name, a PromQL string, a URL path segment, a Markdown line.
func FuzzReleaseValidate(f *testing.F) {
	f.Add("checkout", "v2", "production", "abc123", "desc")
	f.Add("..", `v2",version=~".*`, "prod/eu", "a/../b", "\x1b")
	f.Add("127.0.0.1:80#", "../approvals/v1", ".", "", "### x\n|a|")
	f.Fuzz(func(t *testing.T, service, version, env, commit, desc string) {
		r := state.Release{Service: service, Version: version, Environment: env, Commit: commit, Description: desc}
		err := r.Validate()
		if err != nil {
			if !errors.Is(err, state.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		for _, v := range []string{service, version, env} {
			if v == "." || v == ".." || strings.ContainsAny(v, "/\\:#?\"'`{}$%@ \t\r\n\x00") || len(v) > state.MaxNameLen {
				t.Fatalf("accepted unsafe name %q", v)
			}
		}
		if service == "" || version == "" {
			t.Fatal("accepted an empty required field")
		}
		if strings.Contains(commit, "..") || !utf8.ValidString(desc) || strings.ContainsAny(desc, "\x00\x1b\r") {
			t.Fatalf("accepted commit %q or description %q", commit, desc)
		}
	})
}
