package postgres

import "fmt"

// migrations returns the statements that Migrate runs, in order, for table
// t and its history table h. Each is idempotent.
func migrations(t, h string) []string {
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
	id           text PRIMARY KEY,
	service      text NOT NULL,
	environment  text NOT NULL,
	status       text NOT NULL,
	rev          bigint NOT NULL,
	token        bigint NOT NULL,
	record       jsonb NOT NULL,
	updated_at   timestamptz NOT NULL DEFAULT now(),
	timeline_n   integer,
	rollback_n   integer,
	aside_reason text,
	aside_at     timestamptz
)`, t),
		// Tables created by earlier versions.
		fmt.Sprintf(`ALTER TABLE %[1]s
	ADD COLUMN IF NOT EXISTS timeline_n integer,
	ADD COLUMN IF NOT EXISTS rollback_n integer,
	ADD COLUMN IF NOT EXISTS aside_reason text,
	ADD COLUMN IF NOT EXISTS aside_at timestamptz`, t),
		fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %[1]s_active ON %[1]s (service, environment) WHERE status IN ('running', '')`, t),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
	id       text NOT NULL,
	rollback boolean NOT NULL,
	seq      integer NOT NULL,
	entry    jsonb NOT NULL,
	PRIMARY KEY (id, rollback, seq)
)`, h),
		// Records written by earlier versions keep their history inside
		// the jsonb column (timeline_n is NULL): move it to rows.
		fmt.Sprintf(`INSERT INTO %[2]s (id, rollback, seq, entry)
SELECT r.id, x.rollback, x.o - 1, x.e
FROM %[1]s r, LATERAL (
	SELECT false, e, o FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.record->'timeline') = 'array' THEN r.record->'timeline' ELSE '[]' END) WITH ORDINALITY AS a(e, o)
	UNION ALL
	SELECT true, e, o FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.record->'rollbackSteps') = 'array' THEN r.record->'rollbackSteps' ELSE '[]' END) WITH ORDINALITY AS b(e, o)
) AS x(rollback, e, o)
WHERE r.timeline_n IS NULL
ON CONFLICT (id, rollback, seq) DO UPDATE SET entry = EXCLUDED.entry`, t, h),
		fmt.Sprintf(`UPDATE %[1]s SET
	timeline_n = CASE WHEN jsonb_typeof(record->'timeline') = 'array' THEN jsonb_array_length(record->'timeline') ELSE 0 END,
	rollback_n = CASE WHEN jsonb_typeof(record->'rollbackSteps') = 'array' THEN jsonb_array_length(record->'rollbackSteps') ELSE 0 END,
	record = record - 'timeline' - 'rollbackSteps'
WHERE timeline_n IS NULL`, t),
	}
}

// queries are the statements for one table.
type queries struct {
	migrate                               []string
	create, active, load, update, current string
	quarantine, list                      string
}

func newQueries(t, h string) queries {
	// Entries arrive as three parallel arrays: rollback, seq, JSON text.
	const entries = `unnest($%d::boolean[], $%d::integer[], $%d::text[]) AS x(rollback, seq, entry)`
	const upsert = `ON CONFLICT (id, rollback, seq) DO UPDATE SET entry = EXCLUDED.entry`
	return queries{
		migrate: migrations(t, h),
		list:    listQuery(t),
		create: fmt.Sprintf(`WITH head AS (
	INSERT INTO %[1]s (id, service, environment, status, rev, token, record, timeline_n, rollback_n, updated_at)
	VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, now()) RETURNING id
), hist AS (
	INSERT INTO %[2]s (id, rollback, seq, entry)
	SELECT head.id, x.rollback, x.seq, x.entry::jsonb FROM head, %[3]s
	%[4]s
)
SELECT count(*) FROM head`, t, h, fmt.Sprintf(entries, 9, 10, 11), upsert),
		active: fmt.Sprintf(`SELECT id, status FROM %s WHERE service = $1 AND environment = $2 AND status IN ('running', '') AND id <> $3 LIMIT 1`, t),
		load: fmt.Sprintf(`SELECT r.rev, r.record, r.timeline_n, r.rollback_n, r.aside_reason, r.aside_at,
	(SELECT coalesce(jsonb_agg(entry ORDER BY seq), '[]') FROM %[2]s WHERE id = r.id AND NOT rollback AND seq < r.timeline_n),
	(SELECT coalesce(jsonb_agg(entry ORDER BY seq), '[]') FROM %[2]s WHERE id = r.id AND rollback AND seq < r.rollback_n)
FROM %[1]s r WHERE r.id = $1`, t, h),
		// $10 and $11 are the stored lengths the new entries follow, -1 for
		// a record whose history is still inside its jsonb.
		update: fmt.Sprintf(`WITH head AS (
	UPDATE %[1]s SET service = $4, environment = $5, status = $6, rev = rev + 1, token = $3, record = $7,
		timeline_n = $8, rollback_n = $9, updated_at = now()
	WHERE id = $1 AND rev = $2 AND token <= $3 AND aside_at IS NULL
		AND coalesce(timeline_n, -1) = $10 AND coalesce(rollback_n, -1) = $11
	RETURNING id
), hist AS (
	INSERT INTO %[2]s (id, rollback, seq, entry)
	SELECT head.id, x.rollback, x.seq, x.entry::jsonb FROM head, %[3]s
	%[4]s
)
SELECT count(*) FROM head`, t, h, fmt.Sprintf(entries, 12, 13, 14), upsert),
		current: fmt.Sprintf(`SELECT rev, token, timeline_n, rollback_n, aside_reason, aside_at,
	CASE WHEN jsonb_typeof(record->'timeline') = 'array' THEN jsonb_array_length(record->'timeline') ELSE 0 END,
	CASE WHEN jsonb_typeof(record->'rollbackSteps') = 'array' THEN jsonb_array_length(record->'rollbackSteps') ELSE 0 END
FROM %s WHERE id = $1`, t),
		quarantine: fmt.Sprintf(`UPDATE %s SET aside_reason = $2, aside_at = now(), status = 'set aside', updated_at = now() WHERE id = $1 AND aside_at IS NULL`, t),
	}
}
