package pgtest

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartStop(t *testing.T) {
	t.Setenv(EnvDSN, "")
	var pid int
	var dir string
	t.Run("running", func(t *testing.T) {
		s := Start(t)
		pid, dir = s.proc.Pid(), s.Dir
		dsn := s.NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		var db string
		var v int
		if err := conn.QueryRow(t.Context(), "SELECT current_database(), current_setting('server_version_num')::int").Scan(&db, &v); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(db, "deploy_test_") {
			t.Errorf("current_database() = %q, want deploy_test_…", db)
		}
		t.Logf("PostgreSQL %d in %s", v, s.Dir)
	})
	// The subtest's cleanup stopped the server, reaped it and removed its
	// directory.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postgres pid %d still exists after cleanup (kill -0: %v)", pid, err)
	}
	if dir == "" {
		t.Fatal("no directory")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("%s still exists after cleanup: %v", dir, err)
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv(EnvBin, "/nonexistent/postgresql/bin")
	_, err := BinDir()
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") {
		t.Errorf("BinDir() = %v, want an error telling how to install PostgreSQL", err)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, dsn := range []string{
		"host=/tmp/x port=5432 user=postgres dbname=postgres sslmode=disable",
		"postgres://postgres@localhost:5432/postgres?sslmode=disable",
		"postgres://postgres@localhost/postgres",
	} {
		got, err := withDatabase(dsn, "deploy_test_1")
		if err != nil {
			t.Errorf("withDatabase(%q): %v", dsn, err)
			continue
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "deploy_test_1" {
			t.Errorf("withDatabase(%q) = %q (database %v, %v), want database deploy_test_1", dsn, got, cfg, err)
		}
	}
}

// TestExistingServer uses one server as if $DEPLOY_TEST_POSTGRES_DSN named
// it: Start starts nothing, NewDatabase creates a database and drops it.
func TestExistingServer(t *testing.T) {
	t.Setenv(EnvDSN, "")
	srv := Start(t)
	t.Setenv(EnvDSN, srv.DSN)
	var name string
	t.Run("existing", func(t *testing.T) {
		s := Start(t)
		if s.proc != nil || s.Dir != "" || s.DSN != srv.DSN {
			t.Fatalf("Start with $%s set started a server: %+v", EnvDSN, s)
		}
		cfg, err := pgx.ParseConfig(s.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
	})
	conn, err := pgx.Connect(t.Context(), srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s: %d left after cleanup (%v), want 0", name, n, err)
	}
}
