package sqlstore_test

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// A sealed engine key is stored once: the first writer's bytes stay, a
// second AddSealedKey of the name is a no-op, and a name never stored is
// not found.
func TestSealedKeyFirstWriterWins(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if _, found, err := db.SealedKey(ctx, "engine"); err != nil || found {
			t.Fatalf("before any write: found %v, %v", found, err)
		}
		first, second := []byte{0, 1, 2, 0xff, 'x'}, []byte("second")
		if err := db.AddSealedKey(ctx, "engine", first, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.AddSealedKey(ctx, "engine", second, time.Now()); err != nil {
			t.Fatalf("second write: %v, want a no-op", err)
		}
		got, found, err := db.SealedKey(ctx, "engine")
		if err != nil || !found || !bytes.Equal(got, first) {
			t.Fatalf("SealedKey = %q, %v, %v; want the first writer's %q", got, found, err, first)
		}
		if _, found, _ := db.SealedKey(ctx, "master"); found {
			t.Fatal("another name found")
		}
	})
}

// Replicas starting at once on a fresh PostgreSQL database all open it:
// the migrations run one replica at a time.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	if os.Getenv("PRIVICORE_TEST_DATABASE") != "postgres" {
		t.Skip("PostgreSQL only (PRIVICORE_TEST_DATABASE=postgres)")
	}
	dsn := pgtest.DSN(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			db, err := sqlstore.Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}
