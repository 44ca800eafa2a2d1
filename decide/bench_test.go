package decide

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/deploykit/deploy/state"
)

// benchFixture has a release with a long history and 50 releases to list.
func benchFixture(b *testing.B) *fixture {
	f := newFixture(b)
	rec := waitingRecord("r1")
	for i := range 1000 {
		rec.Timeline = append(rec.Timeline, state.Entry{At: rec.Created.Add(time.Duration(i) * time.Minute), Phase: state.PhaseDeploy, Kind: state.EntryObservation, Outcome: state.OutcomeHealthy, Name: "bake", Stage: "production", Exposure: 0.1, Detail: "error_rate=0.002, latency_p95_seconds=0.12"})
	}
	rec.Timeline = append(rec.Timeline, state.Entry{At: rec.Updated, Phase: state.PhaseDeploy, Kind: state.EntryGate, Outcome: state.OutcomeWaiting, Name: "approval"})
	f.store.set(rec)
	for i := range 50 {
		f.store.set(waitingRecord(fmt.Sprintf("s%02d", i)))
	}
	return f
}

func benchGet(b *testing.B, f *fixture, path string) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+aliceToken)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, w.Code)
		}
	}
}

// BenchmarkReleasePage renders a release's page: 200 timeline entries of
// 1001, steps, measurements and three signed forms.
func BenchmarkReleasePage(b *testing.B) { benchGet(b, benchFixture(b), "/releases/r1") }

// BenchmarkListPage renders the list of 53 active releases.
func BenchmarkListPage(b *testing.B) { benchGet(b, benchFixture(b), "/") }

// BenchmarkReleaseJSON answers GET /api/releases/{id} for the same release.
func BenchmarkReleaseJSON(b *testing.B) { benchGet(b, benchFixture(b), "/api/releases/r1") }

// BenchmarkFormToken issues and checks one form token.
func BenchmarkFormToken(b *testing.B) {
	f := forms{key: make([]byte, 32), ttl: time.Hour}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tok := f.issue("alice", "shop-production-20261203T083740-93cfe35f9a0b", 1, Approve, now)
		if _, err := f.check(tok, "alice", "shop-production-20261203T083740-93cfe35f9a0b", 1, Approve, now); err != nil {
			b.Fatal(err)
		}
	}
}
