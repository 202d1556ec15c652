// Package commandtest holds what the rule packages' tests share to run the
// command model for real: a SQLite store in the test's directory (or
// stores on both dialects), a
// publisher for processors no socket listens to, and waiting for a
// command's outcome in the store. It is imported by tests only.
package commandtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// Wait bounds how long Settle waits for a command: a guard against a
// hang, not a measurement.
const Wait = 20 * time.Second

// Open opens a SQLite store under t.TempDir(), closed when the test ends.
func Open(t testing.TB) *sqlstore.DB {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// OpenWithPeers opens a store as Open does and gives it Local peers, as
// an engine alone on its database has: every change it commits reaches
// the caches registered with the peers.
func OpenWithPeers(t testing.TB) (*sqlstore.DB, *coherence.Peers) {
	t.Helper()
	store := Open(t)
	peers := coherence.Local()
	store.SetPeers(peers)
	return store, peers
}

// Write runs fn as one write of store, failing t if it fails.
func Write(t testing.TB, store privicore.Store, fn func(q privicore.Queries) error) {
	t.Helper()
	if err := store.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// OnEachDialect runs fn on n handles of one fresh database, each with its
// own writer as n engines' would be, once on SQLite and once on
// PostgreSQL (pgtest.EachDialect: skipped without it unless
// PRIVICORE_REQUIRE_POSTGRES); the handles close when fn's test ends.
func OnEachDialect(t *testing.T, n int, fn func(t *testing.T, stores []*sqlstore.DB)) {
	t.Helper()
	pgtest.EachDialect(t, func(t *testing.T, dsn string) {
		var stores []*sqlstore.DB
		for range n {
			db, err := sqlstore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			stores = append(stores, db)
		}
		fn(t, stores)
	})
}

// Nowhere is a command.Publisher that publishes nothing.
type Nowhere struct{}

// Publish implements command.Publisher.
func (Nowhere) Publish(string, any) {}

// Settle fails the test if the submission failed (err), else waits until
// command c is no longer pending in store and returns its record.
func Settle(t testing.TB, store privicore.Queries, c *privicore.Command, err error) *privicore.Command {
	t.Helper()
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	deadline := time.Now().Add(Wait)
	for {
		got, err := store.FindCommand(context.Background(), c.ID)
		if err == nil && got.Status != privicore.CommandPending {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("command %s (%s) still pending after %s: %v", c.ID, c.Type, Wait, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Succeeded settles c and fails the test unless it succeeded.
func Succeeded(t testing.TB, store privicore.Queries, c *privicore.Command, err error) *privicore.Command {
	t.Helper()
	got := Settle(t, store, c, err)
	if got.Status != privicore.CommandSucceeded {
		t.Fatalf("command %s (%s): %v %q, want succeeded", got.ID, got.Type, got.Status, got.Body)
	}
	return got
}

// Rejected settles c and fails the test unless it was rejected for reason.
func Rejected(t testing.TB, store privicore.Queries, reason string, c *privicore.Command, err error) *privicore.Command {
	t.Helper()
	got := Settle(t, store, c, err)
	if got.Status != privicore.CommandRejected || got.Body != reason {
		t.Fatalf("command %s (%s): %v %q, want rejected %s", got.ID, got.Type, got.Status, got.Body, reason)
	}
	return got
}

// Submitted is what a submission returned, so that a call's two results
// can be passed on with more arguments: r.Rejected(t, Sub(svc.X(…)), reason).
type Submitted struct {
	C   *privicore.Command
	Err error
}

// Sub pairs a submission's results.
func Sub(c *privicore.Command, err error) Submitted { return Submitted{c, err} }

// Eventually waits until cond holds and fails the test if it does not
// within Wait (a guard against a hang, not a measurement).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, what, Wait, cond)
}

// EventuallyWithin is Eventually with its own guard, for waits that
// include something slow by design (a lease's expiry, a process's
// recovery).
func EventuallyWithin(t testing.TB, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never, within %s: %s", wait, what)
		}
	}
}
