package deploy_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// a scheduler that lists the active releases sees, for each, the time
// Reconcile said its next action is due, and a finished release no more.
func TestReconcileSavesNextForTheListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		r := openRunner(t, ramp(), store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			next, rep, err := r.Reconcile(t.Context(), id)
			if rep != nil && rep.Status.Final() {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := store.List(t.Context(), state.Query{ActiveOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Releases) != 1 || p.Releases[0].ID != id {
				t.Fatalf("active releases = %+v, want %s alone", p.Releases, id)
			}
			if got := p.Releases[0].Next; !got.Equal(next) {
				t.Fatalf("listed Next = %v, Reconcile returned %v", got, next)
			}
			time.Sleep(time.Until(next))
		}
		p, err := store.List(t.Context(), state.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Releases) != 1 || !p.Releases[0].Status.Final() || !p.Releases[0].Next.IsZero() {
			t.Fatalf("after the end the listing is %+v, want one final release with no Next", p.Releases)
		}
		if p, _ := store.List(t.Context(), state.Query{ActiveOnly: true}); len(p.Releases) != 0 {
			t.Errorf("active releases after the end: %+v", p.Releases)
		}
	})
}
