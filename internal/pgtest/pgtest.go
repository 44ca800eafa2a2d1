// Package pgtest starts a real PostgreSQL server for tests.
//
// [Start] runs initdb and postgres from Debian's package "postgresql"
// (binaries under /usr/lib/postgresql/<version>/bin) in a temporary
// directory of its own, listening only on a Unix socket in that directory,
// with fsync off. It waits until the server accepts connections and stops
// it, and removes the directory, when the test ends. PostgreSQL refuses to
// run as root, so when the test runs as root the server runs as the system
// user "postgres", which the Debian package creates.
//
// Missing binaries fail the test, they do not skip it. Install them with
//
//	apt-get install -y postgresql
//
// or point $DEPLOY_TEST_POSTGRES_BIN at a directory holding initdb and
// postgres. To use a server that is already running instead, set
// $DEPLOY_TEST_POSTGRES_DSN to a connection string for a user that may
// create databases; [Server.NewDatabase] then creates (and drops) databases
// there.
//
// The package's own cluster (Debian's "main", port 5432) is never used nor
// touched.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deploykit/deploy/internal/proctest"
)

// Environment variables read by Start.
const (
	// EnvDSN names an existing server to use instead of starting one.
	EnvDSN = "DEPLOY_TEST_POSTGRES_DSN"
	// EnvBin names the directory holding initdb and postgres.
	EnvBin = "DEPLOY_TEST_POSTGRES_BIN"
)

// install is what every "binaries missing" error tells the reader to run.
const install = "install PostgreSQL with `apt-get install -y postgresql`"

// readyTimeout bounds initdb plus the wait for the server to accept
// connections.
const readyTimeout = 60 * time.Second

// Server is a PostgreSQL server for tests.
type Server struct {
	// DSN connects to the server's "postgres" database as a superuser, in
	// keyword/value form.
	DSN string
	// Dir holds the data directory and the Unix socket; empty for a server
	// named by $DEPLOY_TEST_POSTGRES_DSN.
	Dir string

	proc *proctest.Process // nil until postgres runs
}

// BinDir returns the directory holding initdb and postgres:
// $DEPLOY_TEST_POSTGRES_BIN, else the highest version under
// /usr/lib/postgresql, else the directory of initdb on $PATH.
func BinDir() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		if err := hasBinaries(d); err != nil {
			return "", fmt.Errorf("pgtest: $%s=%q: %w; %s", EnvBin, d, err, install)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if hasBinaries(d) == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); hasBinaries(d) == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin nor on $PATH: %s, or set $%s to their directory, or set $%s to an existing server", install, EnvBin, EnvDSN)
}

// version returns the major version in a path like /usr/lib/postgresql/15/bin.
func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func hasBinaries(dir string) error {
	for _, b := range []string{"initdb", "postgres"} {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil {
			return err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable", filepath.Join(dir, b))
		}
	}
	return nil
}

// Start starts a server, or connects to $DEPLOY_TEST_POSTGRES_DSN, and
// registers its shutdown with t.Cleanup. It fails the test if the
// binaries are missing or the server is not ready within a minute.
func Start(t testing.TB) *Server {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s := &Server{DSN: dsn}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ping(ctx, dsn); err != nil {
			t.Fatalf("pgtest: $%s: %v", EnvDSN, err)
		}
		return s
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := start(bin)
	if s != nil {
		t.Cleanup(func() {
			if s.proc != nil {
				if err := s.proc.Stop(); err != nil {
					t.Errorf("pgtest: %v", err)
				}
				if t.Failed() {
					t.Logf("postgres log:\n%s", s.proc.Logs(4000))
				}
			}
			if err := os.RemoveAll(s.Dir); err != nil {
				t.Errorf("pgtest: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

// Launch starts a throwaway server outside a test — for an example or a
// benchmark program that needs one when none is configured — and returns
// it ready; [Server.Close] stops it and removes its directory. It does not
// read $DEPLOY_TEST_POSTGRES_DSN.
func Launch() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s, err := start(bin)
	if err != nil {
		if s != nil {
			_ = s.Close()
		}
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, nil
}

// Close stops a server started by [Launch] and removes its directory.
func (s *Server) Close() error {
	var errs []error
	if s.proc != nil {
		errs = append(errs, s.proc.Stop())
	}
	if s.Dir != "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// CreateDatabase creates an empty database named name and returns its
// connection string, outside a test (see [Launch]).
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := exec1(ctx, s.DSN, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return withDatabase(s.DSN, name)
}

// DSN starts a server with [Start] and returns the connection string of a
// new, empty database on it: a shortcut for tests that need one database.
func DSN(t testing.TB) string {
	t.Helper()
	return Start(t).NewDatabase(t)
}

// NewDatabase creates an empty database and returns its connection string.
// The database is dropped when the test ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "deploy_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec1(ctx, s.DSN, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections a test left open (PostgreSQL 13 and later).
		if err := exec1(ctx, s.DSN, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(s.DSN, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// withDatabase returns dsn with its database replaced by name: a
// dbname setting after the others overrides them in both the URL and the
// keyword/value form.
func withDatabase(dsn, name string) (string, error) {
	out := dsn + " dbname=" + name
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		out = dsn + sep + "dbname=" + name
	}
	cfg, err := pgx.ParseConfig(out)
	if err != nil {
		return "", fmt.Errorf("parsing DSN: %w", err)
	}
	if cfg.Database != name {
		return "", fmt.Errorf("cannot set the database of DSN %q: got %q", dsn, cfg.Database)
	}
	return out, nil
}

func exec1(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func ping(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// port is the number in the socket's name; the socket directory is the
// server's own, so it never collides with another server.
const port = 5432

// start runs initdb and postgres in a new directory. A non-nil Server is
// returned whenever something needs cleaning up, even with an error.
func start(bin string) (*Server, error) {
	cred, owner, err := credential()
	if err != nil {
		return nil, err
	}
	// The socket path must fit in 107 bytes, and the user postgres must be
	// able to reach the directory: $TMPDIR may be neither.
	base := os.TempDir()
	if len(base) > 40 || owner != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	if owner != nil {
		if err := os.Chown(dir, owner.uid, owner.gid); err != nil {
			return s, err
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata="+data, "--username=postgres", "--auth=trust",
		"--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir // the test's directory may be closed to the user postgres
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return s, fmt.Errorf("initdb: %v:\n%s", err, out)
	}

	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-k", dir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=100",
	)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Its backends exit on their own once the postmaster is gone.
	cmd.SysProcAttr = proctest.SysProcAttr(cred)
	// SIGINT is PostgreSQL's fast shutdown.
	if s.proc, err = proctest.Start("postgres", cmd, syscall.SIGINT); err != nil {
		return s, err
	}
	s.DSN = fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", quote(dir), port)
	return s, s.proc.WaitReady(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return ping(ctx, s.DSN)
	})
}

// quote quotes a value for a keyword/value connection string.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

type ids struct{ uid, gid int }

// credential returns who the server runs as: nil (the current user) unless
// the test runs as root, then the user "postgres".
func credential() (*syscall.Credential, *ids, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("PostgreSQL refuses to run as root and the user \"postgres\" to run it as does not exist (%v): %s, which creates it", err, install)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, &ids{uid, gid}, nil
}

// Logs returns what the server has logged so far; empty for a server named
// by $DEPLOY_TEST_POSTGRES_DSN.
func (s *Server) Logs() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.Logs(1 << 20)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
