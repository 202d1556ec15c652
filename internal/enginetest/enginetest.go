// Package enginetest runs a real engine in-process for tests: real SQLite
// in a temporary data dir (or, with PRIVICORE_TEST_DATABASE=postgres, a
// fresh database on a real PostgreSQL the tests start: internal/pgtest, its
// engines given a KEK of their own: KEKFor), real HTTP and WebSocket
// listeners on loopback.
package enginetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/keyring"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/ratelimit"
	"github.com/privicore/privicore/internal/sqlstore"
)

// Engine is an engine under test.
type Engine struct {
	*engine.Engine
	URL     string // http://127.0.0.1:PORT
	WSURL   string // ws://127.0.0.1:PORT/ws
	DataDir string
	cancel  context.CancelFunc
	done    chan error
}

// Start runs an engine with a fresh data dir, stopped when the test ends.
// Set PRIVICORE_TEST_LOG=1 to see its log. configure, if given, adjusts the
// configuration first.
func Start(t testing.TB, configure ...func(*engine.Config)) *Engine {
	t.Helper()
	cfg := engine.Config{DataDir: t.TempDir()}
	for _, f := range configure {
		f(&cfg)
	}
	e := StartWith(t, cfg)
	return e
}

// LargeEnv is the environment variable that asks for the deliberately heavy
// tests at full size (a 1 GiB stream, 1 000 commands of every kind): CI sets
// it in a step of its own; the README's `go test ./...` runs them small or
// skips them.
const LargeEnv = "PRIVICORE_TEST_LARGE"

// Large reports whether LargeEnv is set to 1.
func Large() bool { return os.Getenv(LargeEnv) == "1" }

// TestPasswordParams are the argon2id costs of an engine under test that
// sets none: the cheapest argon2id allows.
var TestPasswordParams = password.Params{Memory: 8, Time: 1, Threads: 1, KeyLen: 32}

// TestCacheRenew is how often a replica under test renews its membership of
// cache coherence (engine.Config.CacheRenew): its caches are trusted after
// 2×TestCacheRenew + 500 ms instead of 2.5 s.
const TestCacheRenew = 200 * time.Millisecond

var (
	pgMu    sync.Mutex
	pgByDir = map[string]string{} // data dir → its PostgreSQL database
	kekByDB = map[string][]byte{} // PostgreSQL database → the KEK its engines share
)

// KEKFor returns the KEK StartWith gives the engines it starts on the
// PostgreSQL database dsn without one: one per database, made the first
// time, so that every engine (and a restart) on it opens the same keys.
func KEKFor(t testing.TB, dsn string) []byte {
	t.Helper()
	pgMu.Lock()
	defer pgMu.Unlock()
	if kekByDB[dsn] == nil {
		kek, err := keyring.NewKEK()
		if err != nil {
			t.Fatal(err)
		}
		kekByDB[dsn] = kek
	}
	return kekByDB[dsn]
}

// StartWith runs an engine with cfg (Addr and WSAddr default to free
// loopback ports), stopped when the test ends.
func StartWith(t testing.TB, cfg engine.Config) *Engine {
	t.Helper()
	if cfg.Database == "" && os.Getenv("PRIVICORE_TEST_DATABASE") == "postgres" {
		// A fresh database on the test PostgreSQL, the same one again for
		// an engine restarted on the same data dir.
		pgMu.Lock()
		if pgByDir[cfg.DataDir] == "" {
			pgByDir[cfg.DataDir] = pgtest.DSN(t)
		}
		cfg.Database = pgByDir[cfg.DataDir]
		pgMu.Unlock()
	}
	if cfg.KEK == nil && sqlstore.IsPostgres(cfg.Database) {
		cfg.KEK = KEKFor(t, cfg.Database)
	}
	// t.TempDir() is 0755 under the usual umask; the engine refuses a data
	// dir others can read.
	_ = os.Chmod(cfg.DataDir, 0o700)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.WSAddr == "" {
		cfg.WSAddr = "127.0.0.1:0"
	}
	if cfg.BusAddr == "" {
		cfg.BusAddr = "127.0.0.1:0"
	}
	// Tests log in and register freely unless they set a limit.
	for _, q := range []*ratelimit.Quota{&cfg.AuthUserAddrFailures, &cfg.AuthUserFailures, &cfg.AuthAddrFailures, &cfg.RegisterPerAddr} {
		if q.IsZero() {
			*q = ratelimit.NoLimit
		}
	}
	// Hashing at production cost (19 MiB, t=2) is most of a test's CPU:
	// tests hash cheaply unless they set parameters (TestPasswordDefaults in
	// internal/engine checks the production ones).
	if cfg.PasswordParams == (password.Params{}) {
		cfg.PasswordParams = TestPasswordParams
	}
	// A replica trusts its caches only after a warm-up of two membership
	// renewals: tests renew often, so that a cluster is ready sooner.
	if cfg.CacheRenew == 0 {
		cfg.CacheRenew = TestCacheRenew
	}
	if cfg.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("PRIVICORE_TEST_LOG") != "" {
			w = os.Stderr
		}
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start engine: %v", err)
	}
	if err := eng.Listen(); err != nil {
		eng.Close()
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{Engine: eng, URL: "http://" + eng.Addr(), WSURL: "ws://" + eng.Addr() + "/ws", DataDir: cfg.DataDir, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- eng.Serve(ctx) }()
	t.Cleanup(func() { e.Stop() })
	return e
}

// Stop shuts the engine down gracefully and waits for it.
func (e *Engine) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.cancel = nil
}
