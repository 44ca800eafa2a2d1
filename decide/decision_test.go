package decide

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

func (f *fixture) apiPost(id, action, body, token string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/api/releases/"+id+"/"+action, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func outcomeOf(t *testing.T, w *httptest.ResponseRecorder) Outcome {
	t.Helper()
	var o Outcome
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
		t.Fatalf("answer %d is not an Outcome: %v\n%s", w.Code, err, w.Body)
	}
	return o
}

func TestAnApprovalFromThePageRecordsWhoDecided(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", bobToken)["approve"]
	w := f.post(fm, bobToken)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "bob approved step 2 (50%) of release r1") {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	want := []call{{Action: Approve, ID: "r1", Step: 1, D: deploy.Decision{By: "bob", Reason: "from the decision page"}}}
	if diff := cmp.Diff(want, f.dec.got()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestTheSameFormPostedTwiceDecidesOnce(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", aliceToken)["approve"]
	if w := f.post(fm, aliceToken); w.Code != http.StatusOK {
		t.Fatalf("first post: %d %s", w.Code, w.Body)
	}
	w := f.post(fm, aliceToken)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "already decided, nothing done again") {
		t.Errorf("second post: %d, want 200 saying already decided: %s", w.Code, w.Body)
	}
	if n := len(f.dec.got()); n != 1 {
		t.Errorf("decider called %d times, want 1", n)
	}
}

func TestADoubleClickDecidesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		fm := f.forms(t, "r1", aliceToken)["approve"]
		f.dec.block = make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		bodies := make([]string, 2)
		for i := range 2 {
			wg.Go(func() { w := f.post(fm, aliceToken); codes[i], bodies[i] = w.Code, w.Body.String() })
		}
		synctest.Wait()
		close(f.dec.block)
		wg.Wait()
		if n := len(f.dec.got()); n != 1 {
			t.Errorf("decider called %d times, want 1", n)
		}
		if codes[0] != 200 || codes[1] != 200 || strings.Contains(bodies[0], "already") == strings.Contains(bodies[1], "already") {
			t.Errorf("answers %v: want both 200, one saying already decided\n%s\n%s", codes, bodies[0], bodies[1])
		}
	})
}

func TestAJSONDecisionWithTheSameIdempotencyKeyDecidesOnce(t *testing.T) {
	f := newFixture(t)
	first := outcomeOf(t, f.apiPost("r1", "approve", `{"step":1,"reason":"load test green"}`, aliceToken, "Idempotency-Key", "k1"))
	again := f.apiPost("r1", "approve", `{"step":1,"reason":"load test green"}`, aliceToken, "Idempotency-Key", "k1")
	second := outcomeOf(t, again)
	if !first.OK || first.Repeated || !second.OK || !second.Repeated || again.Code != http.StatusOK {
		t.Errorf("first %+v, second %d %+v: want both OK, the second Repeated", first, again.Code, second)
	}
	want := []call{{Action: Approve, ID: "r1", Step: 1, D: deploy.Decision{By: "alice", Reason: "load test green"}}}
	if diff := cmp.Diff(want, f.dec.got()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Without the key, the decision is checked against the release, which
	// has moved on: a clear refusal, not a second effect.
	if w := f.apiPost("r1", "approve", `{"step":1}`, aliceToken); w.Code != http.StatusConflict {
		t.Errorf("approve step 2 again without a key: %d, want 409: %s", w.Code, w.Body)
	}
}

func TestAFailedDecisionCanBeTriedAgain(t *testing.T) {
	f := newFixture(t)
	fm := f.forms(t, "r1", aliceToken)["approve"]
	f.dec.err = errors.New("store unavailable")
	if w := f.post(fm, aliceToken); w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "store unavailable") {
		t.Fatalf("failing approve: %d %s", w.Code, w.Body)
	}
	f.dec.err = nil
	if w := f.post(fm, aliceToken); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "already") {
		t.Errorf("the same form after the failure: %d, want 200 and a new decision: %s", w.Code, w.Body)
	}
	if n := len(f.dec.got()); n != 2 {
		t.Errorf("decider called %d times, want 2", n)
	}
}

func TestADecisionIsBoundedInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, WithTimeout(5*time.Second))
		f.dec.block = make(chan struct{}) // never closed: the decider hangs
		start := time.Now()
		w := f.apiPost("r1", "approve", `{"step":1}`, aliceToken)
		if w.Code != http.StatusGatewayTimeout || time.Since(start) != 5*time.Second {
			t.Errorf("a hanging decider: %d after %v, want 504 after 5s: %s", w.Code, time.Since(start), w.Body)
		}
	})
}

func TestAPanickingDeciderIsAnswered(t *testing.T) {
	f := newFixture(t)
	f.dec.panic = true
	w := f.apiPost("r1", "approve", `{"step":1}`, aliceToken)
	if o := outcomeOf(t, w); w.Code != http.StatusInternalServerError || o.OK || !strings.Contains(o.Message, "panic") {
		t.Errorf("a panicking decider: %d %+v", w.Code, o)
	}
}

func TestARollbackLongerThanThePageWaitsIsUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, WithTimeout(5*time.Second))
		f.dec.block = make(chan struct{})
		start := time.Now()
		w := f.apiPost("r1", "rollback", `{"reason":"p99 up"}`, aliceToken)
		o := outcomeOf(t, w)
		if w.Code != http.StatusAccepted || !o.OK || !o.Pending || time.Since(start) != 2500*time.Millisecond {
			t.Errorf("a long rollback: %d %+v after %v, want 202 pending after half the page's 5s", w.Code, o, time.Since(start))
		}
		// It goes on after the answer, with who asked in its reason.
		if got := f.dec.got(); len(got) != 1 || got[0].D.Reason != "by alice: p99 up" {
			t.Errorf("calls %+v", got)
		}
		close(f.dec.block)
		synctest.Wait()
	})
}

func TestThePageShowsWhatTheReleaseWaitsFor(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/releases/r1", aliceToken, nil)
	body := w.Body.String()
	for _, want := range []string{`id="waiting">approval at step 2 (50%)`, `<tr class="waiting"><td>2</td><td>50%</td>`, `id="exposure">10 %`, "error_rate", `id="approve"`, `id="rollback"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="promote"`) {
		t.Errorf("the page offers promote to a release waiting for approval")
	}
	w = f.do("GET", "/", aliceToken, nil)
	if !strings.Contains(w.Body.String(), `href="/releases/r1"`) || strings.Contains(w.Body.String(), `href="/releases/r3"`) {
		t.Errorf("the list should show r1 and not the finished r3:\n%s", w.Body)
	}
}

func TestThePageEscapesWhatReleasesSay(t *testing.T) {
	f := newFixture(t)
	rec := waitingRecord("r1")
	rec.Timeline = append(rec.Timeline, state.Entry{Kind: state.EntryNote, Detail: `<script>alert(1)</script>`, Name: `"><img src=x onerror=alert(1)>`})
	rec.Steps[0] = "<b>10%</b>"
	f.store.set(rec)
	body := f.do("GET", "/releases/r1", aliceToken, nil).Body.String()
	for _, bad := range []string{"<script>alert", "<img src=x", "<b>10%"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page shows %q unescaped", bad)
		}
	}
}

func TestTheJSONEndpointsListAndShow(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/api/releases", aliceToken, nil)
	var list List
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Releases) != 2 {
		t.Fatalf("GET /api/releases: %v %s", err, w.Body)
	}
	for _, s := range list.Releases {
		if s.ID == "r1" && (s.Waiting == nil || s.Waiting.Kind != state.WaitApproval || s.Waiting.Step != 1) {
			t.Errorf("the list does not say r1 waits for the approval of step 1: %+v", s.Waiting)
		}
	}
	if page := f.do("GET", "/", aliceToken, nil).Body.String(); !strings.Contains(page, "approval of step 2") {
		t.Errorf("the list page does not say what r1 waits for:\n%s", page)
	}
	w = f.do("GET", "/api/releases/r1", aliceToken, nil)
	var v View
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Waiting == nil || v.Waiting.Kind != state.WaitApproval || v.Waiting.Step != 1 || v.Step != 1 || !cmp.Equal(v.Offers, []Action{Approve, Abort, Rollback}) {
		t.Errorf("view: waiting %+v, offers %v", v.Waiting, v.Offers)
	}
	if w := f.do("GET", "/api/releases?limit=0", aliceToken, nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "limit") {
		t.Errorf("limit=0: %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/api/releases?service=../x", aliceToken, nil); w.Code != http.StatusBadRequest {
		t.Errorf("service=../x: %d %s", w.Code, w.Body)
	}
}
