package deploytest_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

func TestStoreMemory(t *testing.T) {
	if err := deploytest.TestStore(func() (state.Store, error) { return state.NewMemory(), nil }); err != nil {
		t.Fatal(err)
	}
}

// broken is a store with one fault, built on a map without copies.
type broken struct {
	mu   sync.Mutex
	recs map[string]*state.Record

	shares   bool // returns and keeps the caller's pointers
	noCAS    bool // ignores Rev
	noFence  bool // ignores Token
	noActive bool // allows two running releases
	dropsMap bool // loses Release.Labels
	racy     bool // checks Rev and writes under separate locks
	// Every broken store accepts an Update that shortens the history or
	// brings a final record back to running beside an active one.
	unclipped bool // shares the history with room to grow
}

func (b *broken) Create(ctx context.Context, r *state.Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recs == nil {
		b.recs = map[string]*state.Record{}
	}
	if _, ok := b.recs[r.ID]; ok {
		return state.ErrExists
	}
	for _, o := range b.recs {
		if !b.noActive && !o.Status.Final() && o.Release.Service == r.Release.Service && o.Release.Environment == r.Release.Environment {
			return state.ErrActive
		}
	}
	r.Rev = 1
	b.recs[r.ID] = b.copy(r)
	return nil
}

func (b *broken) copy(r *state.Record) *state.Record {
	if b.shares {
		return r
	}
	c := r.Clone()
	if b.unclipped {
		c.Timeline, c.RollbackSteps = r.Timeline, r.RollbackSteps
	}
	if b.dropsMap {
		c.Release.Labels = nil
	}
	return c
}

func (b *broken) Load(ctx context.Context, id string) (*state.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.recs[id]
	if !ok {
		return nil, state.ErrNotFound
	}
	return b.copy(r), nil
}

func (b *broken) Update(ctx context.Context, r *state.Record) error {
	b.mu.Lock()
	old, ok := b.recs[r.ID]
	if !ok {
		b.mu.Unlock()
		return state.ErrNotFound
	}
	if !b.noFence && r.Token < old.Token {
		b.mu.Unlock()
		return state.ErrFenced
	}
	if !b.noCAS && r.Rev != old.Rev {
		b.mu.Unlock()
		return state.ErrConflict
	}
	if b.racy {
		b.mu.Unlock()
		for range 1000 { // widen the window between check and write
			runtime.Gosched()
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	r.Rev++
	b.recs[r.ID] = b.copy(r)
	return nil
}

func TestStoreFindsFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func() *broken
		want  []string // checks that must fail
	}{
		{"shares memory", func() *broken { return &broken{shares: true} }, []string{"Load/Copy:"}},
		{"no compare-and-swap", func() *broken { return &broken{noCAS: true} }, []string{"Update/ErrConflict:", "Update/Race:"}},
		{"no fencing", func() *broken { return &broken{noFence: true} }, []string{"Update/ErrFenced:"}},
		{"no active check", func() *broken { return &broken{noActive: true} }, []string{"Create/ErrActive:", "Create/AfterFinal:"}},
		{"drops labels", func() *broken { return &broken{dropsMap: true} }, []string{"RoundTrip:", `Record.Release.Labels`}},
		{"racy update", func() *broken { return &broken{racy: true} }, []string{"Update/Race:"}},
		{"history and reactivation unchecked", func() *broken { return &broken{} }, []string{"History/AppendOnly:", "append-only history", "Update/Reactivate:"}},
		{"history shared with room to grow", func() *broken { return &broken{unclipped: true} }, []string{"History/Shared:", "wrote over it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := deploytest.TestStore(func() (state.Store, error) { return tc.store(), nil })
			if err == nil {
				t.Fatal("TestStore passed a broken store")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("TestStore error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestStoreNewStoreFails(t *testing.T) {
	err := deploytest.TestStore(func() (state.Store, error) { return nil, fmt.Errorf("no database") })
	if err == nil || !strings.Contains(err.Error(), "Create: newStore: no database") {
		t.Errorf("TestStore = %v, want an error naming the check and newStore's error", err)
	}
}

// TestFullRecordSetsEveryField keeps the round-trip check complete: a field
// added to state.Record must be given a value in FullRecord. A field of a
// slice's elements counts as set if one element sets it.
func TestFullRecordSetsEveryField(t *testing.T) {
	set := map[string]bool{}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		if v.IsZero() {
			set[path] = set[path] || false
			return
		}
		set[path] = true
		switch v.Kind() {
		case reflect.Pointer:
			walk(path, v.Elem())
		case reflect.Struct:
			if v.Type().PkgPath() == "time" {
				return
			}
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				for i := range v.Len() {
					walk(path+"[]", v.Index(i))
				}
			}
		}
	}
	walk("Record", reflect.ValueOf(deploytest.FullRecord("rel-1")))
	delete(set, "Record.Rev") // set by stores
	for path, ok := range set {
		if !ok {
			t.Errorf("FullRecord leaves %s zero", path)
		}
	}
}
