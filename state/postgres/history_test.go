package postgres_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// sameRecord compares records as the store gives them back: times as
// instants, event payloads as JSON values.
var sameRecord = cmp.Options{
	cmpopts.EquateApproxTime(0),
	cmp.Transformer("json", func(m json.RawMessage) any {
		var v any
		json.Unmarshal(m, &v)
		return v
	}),
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func step(i int) state.Entry {
	return state.Entry{At: time.Date(2025, 3, 4, 6, 0, i, 0, time.UTC), Phase: "deploy", Kind: "step", Name: fmt.Sprint(i), Exposure: 0.5, Detail: "applied"}
}

// testAppendsHistoryRows: each Update inserts one row per new entry and
// rewrites only the head, whose jsonb holds no history; a second store,
// which remembers nothing of the record, updates it too.
func testAppendsHistoryRows(t *testing.T, pool *pgxpool.Pool, s *postgres.Store) {
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		r.Timeline = append(r.Timeline, step(i))
		if i%5 == 0 {
			r.RollbackSteps = append(r.RollbackSteps, step(i))
		}
		if err := s.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	hist := s.Table() + "_hist"
	if n := count(t, pool, fmt.Sprintf("SELECT count(*) FROM %s WHERE id = 'rel-1'", hist)); n != 26 {
		t.Errorf("%s holds %d rows of rel-1, want 26 (21 timeline entries, 5 rollback steps)", hist, n)
	}
	if n := count(t, pool, fmt.Sprintf("SELECT count(*) FROM %s WHERE record ? 'timeline' OR record ? 'rollbackSteps'", s.Table())); n != 0 {
		t.Errorf("%d heads hold history in their jsonb, want 0", n)
	}
	other, err := postgres.New(pool, postgres.WithTable(s.Table()))
	if err != nil {
		t.Fatal(err)
	}
	r.Timeline = append(r.Timeline, step(99))
	if err := other.Update(ctx, r); err != nil {
		t.Fatalf("Update through a store that never saw the record: %v", err)
	}
	stale := r.Clone()
	stale.Timeline = stale.Timeline[:3]
	if err := other.Update(ctx, stale); !errors.Is(err, state.ErrHistory) {
		t.Errorf("Update shortening the timeline = %v, want ErrHistory", err)
	}
	got, err := s.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, sameRecord); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

// testMigratesEarlierTable: a table of an earlier version, whose records
// hold their history in the jsonb, is migrated: the history moves to rows,
// the records load as they were, and Updates append to them.
func testMigratesEarlierTable(t *testing.T, pool *pgxpool.Pool) {
	ctx := t.Context()
	const table = "releases_earlier"
	for _, q := range []string{
		`CREATE TABLE ` + table + ` (
			id text PRIMARY KEY, service text NOT NULL, environment text NOT NULL, status text NOT NULL,
			rev bigint NOT NULL, token bigint NOT NULL, record jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE UNIQUE INDEX ` + table + `_active ON ` + table + ` (service, environment) WHERE status IN ('running', '')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r := deploytest.FullRecord("rel-1")
	r.Rev = 4
	r.Timeline = append(r.Timeline, step(1), step(2))
	b, _ := json.Marshal(r)
	if _, err := pool.Exec(ctx, `INSERT INTO `+table+` VALUES ('rel-1', 'checkout', 'production', 'running', 4, 5, $1)`, b); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM `+table+`_hist`); n != 4 {
		t.Errorf("after Migrate, %d history rows, want 4", n)
	}
	got, err := s.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, sameRecord); diff != "" {
		t.Fatalf("Load after Migrate (-want +got):\n%s", diff)
	}
	got.Timeline = append(got.Timeline, step(3))
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := s.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again, sameRecord); diff != "" {
		t.Errorf("Load after an Update (-want +got):\n%s", diff)
	}
}

// testQuarantineKeepsRow: a record set aside keeps its row and history,
// marked with the reason, and leaves the unique index of active releases.
func testQuarantineKeepsRow(t *testing.T, pool *pgxpool.Pool, s *postgres.Store) {
	ctx := t.Context()
	if err := s.Create(ctx, deploytest.FullRecord("rel-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(ctx, "rel-1", "runner host decommissioned"); err != nil {
		t.Fatal(err)
	}
	var status, reason string
	err := pool.QueryRow(ctx, fmt.Sprintf("SELECT status, aside_reason FROM %s WHERE id = 'rel-1'", s.Table())).Scan(&status, &reason)
	if err != nil || status != "set aside" || reason != "runner host decommissioned" {
		t.Errorf("row: status %q reason %q, %v; want set aside with the reason", status, reason, err)
	}
	if n := count(t, pool, fmt.Sprintf("SELECT count(*) FROM %s_hist WHERE id = 'rel-1'", s.Table())); n != 2 {
		t.Errorf("%d history rows of rel-1, want 2 kept", n)
	}
	if err := s.Create(ctx, deploytest.FullRecord("rel-2")); err != nil {
		t.Errorf("Create of checkout/production once rel-1 was set aside: %v", err)
	}
}
