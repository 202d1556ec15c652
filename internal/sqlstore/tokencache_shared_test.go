package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestReplicaReadsSeeAnotherReplicasTokenWrites opens one PostgreSQL
// database twice, as two replicas do, each with its peers on one NATS
// server: a data token read (and so cached) by one is then updated and
// deleted by the other, and each read by the first sees the write at once,
// since the writer's commit has made the reader drop the row before it
// returns (coherence.DataToken).
func TestReplicaReadsSeeAnotherReplicasTokenWrites(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	url := enginetest.NATSServer(t, &server.Options{}).ClientURL()
	for i, db := range []*sqlstore.DB{a, b} {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// A long TTL: b must keep trusting its cache however late a renewal
		// comes on a loaded machine (the test is that b caches, then drops).
		peers := coherence.New(string(rune('a'+i)), db, nc, coherence.Options{Subject: "test.coherence", Renew: 100 * time.Millisecond,
			TTL: time.Minute, AckWait: time.Minute, WarmUp: 300 * time.Millisecond})
		if err := peers.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer peers.Close()
		db.SetPeers(peers)
		commandtest.EventuallyWithin(t, "the replica trusts its caches", 10*time.Second, peers.Valid)
	}
	if err := a.Write(ctx, func(q privicore.Queries) error { return q.CreateProfile(ctx, profile("p", "replicas")) }); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tok := &privicore.DataToken{ID: "d1", ProfileID: "p", TempToken: "tmp-1", Token: "dtk-1", ReservationID: "r1", BlobID: "b1",
		Context: "before", Meta: map[string]any{}, State: privicore.TokenStored, CreatedAt: now, UpdatedAt: now}
	write := func(db *sqlstore.DB, fn func(q privicore.Queries) error) {
		t.Helper()
		if err := db.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(a, func(q privicore.Queries) error { return q.CreateDataToken(ctx, tok) })
	read := func(key string) (*privicore.DataToken, error) {
		t.Helper()
		return b.FindDataToken(ctx, "p", key)
	}
	for _, key := range []string{"d1", "dtk-1", "tmp-1"} { // warm every key of b's reads
		if got, err := read(key); err != nil || got.Context != "before" {
			t.Fatalf("replica b reads %s: %+v, %v", key, got, err)
		}
	}
	if got, err := b.FindDataTokenByReservation(ctx, "p", "r1"); err != nil || got.Context != "before" {
		t.Fatalf("replica b reads by reservation: %+v, %v", got, err)
	}
	// b serves the row from its cache: a change behind every replica's back
	// (no commit through a DB) is not seen.
	if _, err := a.SQL().ExecContext(ctx, `UPDATE data_tokens SET context = 'behind' WHERE id = 'd1'`); err != nil {
		t.Fatal(err)
	}
	if got, err := read("d1"); err != nil || got.Context != "before" {
		t.Fatalf("replica b does not cache the row: it reads %+v, %v", got, err)
	}

	changed := *tok
	changed.Context, changed.BlobID = "after", "b2"
	write(a, func(q privicore.Queries) error {
		return q.UpdateDataToken(ctx, &changed, privicore.FieldContext, privicore.FieldPayload)
	})
	for _, key := range []string{"d1", "dtk-1", "tmp-1"} {
		if got, err := read(key); err != nil || got.Context != "after" || got.BlobID != "b2" {
			t.Fatalf("after replica a's update, replica b reads %s: %+v, %v", key, got, err)
		}
	}
	if got, err := b.FindDataTokenByReservation(ctx, "p", "r1"); err != nil || got.Context != "after" {
		t.Fatalf("after replica a's update, replica b reads by reservation: %+v, %v", got, err)
	}

	write(a, func(q privicore.Queries) error { return q.DeleteDataToken(ctx, "d1") })
	for _, key := range []string{"d1", "dtk-1", "tmp-1"} {
		if got, err := read(key); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("after replica a's delete, replica b reads %s: %+v, %v", key, got, err)
		}
	}
}
