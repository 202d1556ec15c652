package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keyring"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/syncbuf"
)

func newKEK(t *testing.T) []byte {
	t.Helper()
	k, err := keyring.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// privateDir is a fresh data dir the engine accepts (0700).
func privateDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	os.Chmod(d, 0o700)
	return d
}

// noKeyFiles fails the test if dir holds engine.key or master.key.
func noKeyFiles(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"engine.key", "master.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in the data dir %s with a KEK (stat: %v)", name, dir, err)
		}
	}
}

var masterIDLine = regexp.MustCompile(`msg="engine keys opened" in_database=(?:true|false) master_key_id=([0-9a-f]{16})`)

// startLogged starts an engine with cfg and returns it with the master key
// id it logged at start.
func startLogged(t *testing.T, cfg engine.Config) (*enginetest.Engine, string) {
	t.Helper()
	var log syncbuf.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	e := enginetest.StartWith(t, cfg)
	m := masterIDLine.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no master key id logged: %s", log.String())
	}
	return e, m[1]
}

// Two engines with separate data dirs on one PostgreSQL database and one
// KEK are replicas: the same engine key (what clients and devices check),
// the same master key (what every stored payload is sealed under), one
// set of profiles; neither writes a key file. An engine given another KEK
// refuses to start, saying what to fix.
func TestReplicasShareKeysThroughTheDatabase(t *testing.T) {
	dsn := pgtest.DSN(t)
	kek := newKEK(t)
	dirA, dirB := privateDir(t), privateDir(t)
	a, masterA := startLogged(t, engine.Config{DataDir: dirA, Database: dsn, KEK: kek})
	b, masterB := startLogged(t, engine.Config{DataDir: dirB, Database: dsn, KEK: kek})
	if a.EngineKey != b.EngineKey {
		t.Fatal("the replicas publish different engine keys")
	}
	if masterA != masterB {
		t.Fatalf("the replicas hold different master keys (%s, %s)", masterA, masterB)
	}
	if st := login(t, a.URL, "replicated", true); st != http.StatusOK {
		t.Fatalf("login on A: %d", st)
	}
	if st := login(t, b.URL, "replicated", false); st != http.StatusOK {
		t.Fatalf("login on B of the profile registered on A: %d", st)
	}
	noKeyFiles(t, dirA)
	noKeyFiles(t, dirB)

	eng, err := engine.New(context.Background(), engine.Config{DataDir: privateDir(t), Database: dsn, KEK: newKEK(t), BusAddr: "127.0.0.1:0"})
	if err == nil {
		eng.Close()
		t.Fatal("an engine with another KEK started")
	}
	if !errors.Is(err, keyring.ErrWrongKEK) || !strings.Contains(err.Error(), "every replica needs the same --kek-file") {
		t.Fatalf("another KEK: %v, want the wrong-KEK error", err)
	}
}

// PostgreSQL without a KEK is refused before the database is reached (no
// server listens at that address), saying how to make a KEK.
func TestPostgresNeedsAKEK(t *testing.T) {
	eng, err := engine.New(context.Background(), engine.Config{DataDir: privateDir(t), Database: "postgres://privicore@127.0.0.1:1/privicore", BusAddr: "127.0.0.1:0"})
	if err == nil {
		eng.Close()
		t.Fatal("PostgreSQL without a KEK: the engine started")
	}
	if !errors.Is(err, engine.ErrNeedKEK) || !strings.Contains(err.Error(), "privicore kek generate FILE") {
		t.Fatalf("PostgreSQL without a KEK: %v", err)
	}
}

// SQLite with a KEK keeps its keys sealed in the database, as PostgreSQL
// does: no key file, the same keys after a restart, and a restart without
// the KEK refused rather than run under new keys.
func TestSQLiteWithAKEK(t *testing.T) {
	dir := privateDir(t)
	db := filepath.Join(dir, "privicore.db")
	kek := newKEK(t)
	e, master := startLogged(t, engine.Config{DataDir: dir, Database: db, KEK: kek})
	key := e.EngineKey
	e.Stop()
	noKeyFiles(t, dir)
	e, again := startLogged(t, engine.Config{DataDir: dir, Database: db, KEK: kek})
	if e.EngineKey != key || again != master {
		t.Fatal("a restart with the KEK opened other keys")
	}
	e.Stop()
	eng, err := engine.New(context.Background(), engine.Config{DataDir: dir, Database: db, BusAddr: "127.0.0.1:0"})
	if err == nil {
		eng.Close()
		t.Fatal("a restart without the KEK started")
	}
	if !errors.Is(err, keyring.ErrKEKRequired) {
		t.Fatalf("a restart without the KEK: %v, want ErrKEKRequired", err)
	}
	noKeyFiles(t, dir)
}

// TestMain stops the test PostgreSQL after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }
