package decide

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Every way of sending a decision the page did not offer, for this person,
// release, step and action, is refused, and the decider is never called.

func TestAGetNeverChangesState(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", aliceToken)["approve"]
	q := "?step=" + fm.step + "&token=" + url.QueryEscape(fm.token)
	for _, path := range []string{"/releases/r1/approve" + q, "/api/releases/r1/approve", "/releases/r1/rollback", "/api/releases/r1/promote"} {
		for _, m := range []string{"GET", "HEAD"} {
			if w := f.do(m, path, aliceToken, nil); w.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, path, w.Code)
			}
		}
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("a GET took decisions: %v", got)
	}
}

func TestACrossOriginPostIsRefused(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", aliceToken)["approve"]
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example"},
	} {
		if w := f.post(fm, aliceToken, hdr...); w.Code != http.StatusForbidden {
			t.Errorf("a form posted with %s: %s: %d, want 403", hdr[0], hdr[1], w.Code)
		}
		w := f.do("POST", "/api/releases/r1/approve", aliceToken, nil, append(hdr, "Content-Type", "application/json")...)
		if w.Code != http.StatusForbidden {
			t.Errorf("a JSON decision with %s: %s: %d, want 403", hdr[0], hdr[1], w.Code)
		}
	}
	if w := f.do("POST", "/login", "", url.Values{"token": {aliceToken}}, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusForbidden {
		t.Errorf("a cross-site login: %d, want 403", w.Code)
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("cross-origin posts took decisions: %v", got)
	}
	// The same form from the page's own origin passes.
	if w := f.post(fm, aliceToken, "Sec-Fetch-Site", "same-origin"); w.Code != http.StatusOK {
		t.Errorf("a same-origin post: %d %s", w.Code, w.Body)
	}
}

func TestAFormIsBoundToItsReleaseStepActionAndPerson(t *testing.T) {
	f := newFixture(t)
	forms := f.forms(t, "r1", aliceToken)
	fm := forms["approve"]
	other := f.forms(t, "r2", aliceToken)["approve"]
	cases := map[string]struct {
		fm    form
		token string
	}{
		"another release":        {form{"r2", "approve", fm.step, fm.token}, aliceToken},
		"another step":           {form{"r1", "approve", "2", fm.token}, aliceToken},
		"another action":         {form{"r1", "rollback", fm.step, fm.token}, aliceToken},
		"another person":         {fm, bobToken},
		"another release's form": {form{"r1", "approve", other.step, other.token}, aliceToken},
		"no token":               {form{"r1", "approve", fm.step, ""}, aliceToken},
		"a token cut short":      {form{"r1", "approve", fm.step, fm.token[:len(fm.token)-2]}, aliceToken},
	}
	for name, c := range cases {
		w := f.post(c.fm, c.token)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "reload the page") {
			t.Errorf("%s: %d, want 403 saying reload: %s", name, w.Code, w.Body)
		}
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("forms bound elsewhere took decisions: %v", got)
	}
}

func TestAFormExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, WithFormTTL(30*time.Minute))
		fm := f.forms(t, "r1", aliceToken)["approve"]
		time.Sleep(30 * time.Minute)
		if w := f.post(fm, aliceToken); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "expired") {
			t.Errorf("a form 30 min old: %d, want 403 expired: %s", w.Code, w.Body)
		}
		if got := f.dec.got(); len(got) != 0 {
			t.Errorf("an expired form took a decision: %v", got)
		}
	})
}

func TestAFormForAStepTheReleaseHasLeftIsRefused(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", aliceToken)["approve"]
	rec := waitingRecord("r1")
	rec.Step = 2 // the release moved on to the third step meanwhile
	rec.Waiting.Step, rec.Waiting.StepName = 2, "100%"
	f.store.set(rec)
	w := f.post(fm, aliceToken)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "at step 3 (100%) now") {
		t.Errorf("a form for step 2 of a release at step 3: %d, want 409: %s", w.Code, w.Body)
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("a stale form took a decision: %v", got)
	}
}

func TestADecisionThatDoesNotApplyIsRefused(t *testing.T) {
	f := newFixture(t)
	// r3 is over: its page offers nothing, and the API refuses.
	if forms := f.forms(t, "r3", aliceToken); len(forms) != 0 {
		t.Errorf("a finished release offers %v", forms)
	}
	for _, a := range []string{"approve", "promote", "rollback", "retry"} {
		w := f.apiPost("r3", a, `{"step":1}`, aliceToken)
		if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "already succeeded") {
			t.Errorf("%s on a finished release: %d, want 409: %s", a, w.Code, w.Body)
		}
	}
	// r1 waits for an approval: promoting or retrying it does not apply.
	for _, a := range []string{"promote", "retry", "skip"} {
		if w := f.apiPost("r1", a, `{"step":1}`, aliceToken); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "waiting for approval") {
			t.Errorf("%s on a release waiting for approval: %d, want 409: %s", a, w.Code, w.Body)
		}
	}
	if w := f.apiPost("nope", "rollback", `{"step":1}`, aliceToken); w.Code != http.StatusNotFound {
		t.Errorf("rollback of an unknown release: %d, want 404", w.Code)
	}
	if w := f.apiPost("r1", "explode", `{}`, aliceToken); w.Code != http.StatusNotFound {
		t.Errorf("an unknown action: %d, want 404", w.Code)
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("decisions that do not apply were taken: %v", got)
	}
}

func TestAJSONDecisionNeedsAJSONBody(t *testing.T) {
	f := newFixture(t)
	w := f.do("POST", "/api/releases/r1/approve", aliceToken, url.Values{"step": {"2"}})
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("a form-encoded JSON decision: %d, want 415", w.Code)
	}
	for _, body := range []string{`{}`, `{"step":1,"extra":1}`, `nope`} {
		if w := f.apiPost("r1", "approve", body, aliceToken); w.Code != http.StatusBadRequest {
			t.Errorf("approve with %s: %d, want 400: %s", body, w.Code, w.Body)
		}
	}
	if got := f.dec.got(); len(got) != 0 {
		t.Errorf("bad requests took decisions: %v", got)
	}
}
