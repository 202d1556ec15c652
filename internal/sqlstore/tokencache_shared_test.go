package sqlstore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestReplicaReadsSeeAnotherReplicasTokenWrites opens one PostgreSQL
// database twice, as two replicas do: a data token read (and so, if
// cached, kept) by one is then updated and deleted by the other, and each
// read by the first sees the write at once. PostgreSQL has no token cache
// (tokenCache); with one, the first replica would keep serving the row it
// read.
func TestReplicaReadsSeeAnotherReplicasTokenWrites(t *testing.T) {
	if os.Getenv("PRIVICORE_TEST_DATABASE") != "postgres" {
		t.Skip("PostgreSQL only (PRIVICORE_TEST_DATABASE=postgres)")
	}
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
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
