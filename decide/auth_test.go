package decide

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/deploykit/deploy/state"
)

func TestEveryRouteRefusesAMissingOrWrongToken(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/", "/releases/r1", "/releases/r1/report.md", "/api/releases", "/api/releases/r1"} {
		for _, tok := range []string{"", "wrong-token-0123456789", aliceToken + "x", aliceToken[:len(aliceToken)-1]} {
			if w := f.do("GET", path, tok, nil); w.Code != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d, want 401", path, tok, w.Code)
			}
		}
		if w := f.do("GET", path, aliceToken, nil); w.Code != http.StatusOK {
			t.Errorf("GET %s with alice's token: %d, want 200: %s", path, w.Code, w.Body)
		}
	}
	fm := f.forms(t, "r1", aliceToken)["approve"]
	if w := f.post(fm, ""); w.Code != http.StatusUnauthorized {
		t.Errorf("POST approve without a token: %d, want 401", w.Code)
	}
	w := f.do("POST", "/api/releases/r1/approve", "", nil, "Content-Type", "application/json")
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("POST /api/…/approve without a token: %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("decisions taken without a token: %v", got)
	}
}

func TestTokensRefusesShortTokensAndEmptyIdentities(t *testing.T) {
	for _, m := range []map[string]string{nil, {"short": "alice"}, {aliceToken: " "}} {
		if _, err := Tokens(m); err == nil {
			t.Errorf("Tokens(%v): no error", m)
		}
	}
}

func TestLoginKeepsTheTokenInAStrictHttpOnlyCookie(t *testing.T) {
	f := newFixture(t)
	w := f.do("POST", "/login", "", url.Values{"token": {"not-a-known-token-xyz"}})
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Fatalf("login with a wrong token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	w = f.do("POST", "/login", "", url.Values{"token": {bobToken}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != TokenCookie || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie: %+v", cs)
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.AddCookie(cs[0])
	who, err := mustTokens(t).Authorize(r)
	if err != nil || who != "bob" {
		t.Errorf("the cookie authorizes %q, %v; want bob", who, err)
	}
}

func mustTokens(t *testing.T) Authorizer {
	a, err := Tokens(map[string]string{aliceToken: "alice", bobToken: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAnAuthorizerThatPanicsOrNamesNobodyRefuses(t *testing.T) {
	store := &fakeStore{recs: map[string]*state.Record{}}
	for name, a := range map[string]Authorizer{
		"panics":  AuthorizerFunc(func(*http.Request) (string, error) { panic("bug") }),
		"nobody":  AuthorizerFunc(func(*http.Request) (string, error) { return "", nil }),
		"refuses": AuthorizerFunc(func(*http.Request) (string, error) { return "x", errors.New("no") }),
	} {
		h, err := New(&fakeDecider{store: store}, store, a)
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{h: h}
		if w := f.do("GET", "/", "", nil); w.Code != http.StatusUnauthorized {
			t.Errorf("an authorizer that %s: %d, want 401", name, w.Code)
		}
	}
}
