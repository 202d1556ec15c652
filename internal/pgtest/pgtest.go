// Package pgtest runs a real, throwaway PostgreSQL server for tests: one
// cluster per test binary (initdb in a temp dir, postgres on a free
// loopback port, fsync off), and a fresh database per test.
//
// The server binaries are looked up on PATH, then under
// /usr/lib/postgresql/*/bin. Without them the tests skip, unless
// PRIVICORE_REQUIRE_POSTGRES is set (CI sets it): then they fail. When the
// tests run as root, the server runs as the nobody user (PostgreSQL refuses
// to run as root).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver sqlstore uses

	"github.com/privicore/privicore/internal/memtmp"
)

var (
	once    sync.Once
	baseDSN string
	initErr error
	seq     atomic.Int64
	cleanup func()
)

// DSN returns the URL of a fresh, empty database on the shared server,
// dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	once.Do(func() { baseDSN, initErr = start() })
	if initErr != nil {
		if os.Getenv("PRIVICORE_REQUIRE_POSTGRES") != "" {
			t.Fatalf("PostgreSQL: %v", initErr)
		}
		t.Skipf("PostgreSQL not available: %v", initErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	admin, err := sql.Open("pgx", baseDSN+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", baseDSN+"/postgres?sslmode=disable"); err == nil {
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			a.Close()
		}
	})
	return baseDSN + "/" + name + "?sslmode=disable"
}

// Stop stops the shared server (call it from TestMain after m.Run).
func Stop() {
	if cleanup != nil {
		cleanup()
	}
}

// Main is a TestMain for packages whose tests use the shared server: it
// runs the tests with their temporary files, and the server's, in memory
// (internal/memtmp), stops the server and exits with their status.
func Main(m *testing.M) {
	restore := memtmp.Use() // the server's files and the tests' in memory
	code := m.Run()
	Stop()
	restore()
	os.Exit(code)
}

// bin finds a PostgreSQL program.
func bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // newest version first
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql", name)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// asServerUser makes cmd run as nobody when we are root.
func asServerUser(cmd *exec.Cmd, dirs ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	const nobody = 65534
	for _, d := range dirs {
		if err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nobody, nobody)
		}); err != nil {
			return err
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs initdb and postgres and returns the server's base URL.
func start() (string, error) {
	initdb, err := bin("initdb")
	if err != nil {
		return "", err
	}
	postgres, err := bin("postgres")
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "privicore-pg-")
	if err != nil {
		return "", err
	}
	os.Chmod(root, 0o755)
	data, sock := filepath.Join(root, "data"), filepath.Join(root, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", err
		}
	}
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if err := asServerUser(cmd, data, sock); err != nil {
		return "", err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(root)
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	srv := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", sock, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	logFile, _ := os.Create(filepath.Join(root, "postgres.log"))
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := asServerUser(srv); err != nil {
		return "", err
	}
	// A test binary killed (e.g. by a timeout) takes its server along.
	if srv.SysProcAttr == nil {
		srv.SysProcAttr = &syscall.SysProcAttr{}
	}
	srv.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := srv.Start(); err != nil {
		os.RemoveAll(root)
		return "", fmt.Errorf("postgres: %w", err)
	}
	cleanup = func() {
		srv.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
		}
		os.RemoveAll(root)
	}
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		db, err := sql.Open("pgx", base+"/postgres?sslmode=disable")
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			return base, nil
		}
		if ctx.Err() != nil {
			log, _ := os.ReadFile(filepath.Join(root, "postgres.log"))
			cleanup()
			return "", fmt.Errorf("postgres did not start: %v: %s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// EachDialect runs fn as two subtests, each with the DSN of a fresh empty
// database: "sqlite" (a file in a temporary directory) and "postgres" (DSN;
// skipped without PostgreSQL unless PRIVICORE_REQUIRE_POSTGRES is set).
// Code that must behave alike on both dialects is tested through it.
func EachDialect(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "db.sqlite")) })
	t.Run("postgres", func(t *testing.T) { fn(t, DSN(t)) })
}
