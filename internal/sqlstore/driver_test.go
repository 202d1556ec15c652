package sqlstore_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// Every pooled connection runs with the durability and locking settings,
// whichever driver this build has (go test, and CGO_ENABLED=0 go test).
func TestEveryConnectionHasThePragmas(t *testing.T) {
	t.Logf("driver: %s", sqlstore.SQLiteDriver)
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	defer db.Close()
	var conns []*sql.Conn
	for range 4 { // held at once: four distinct connections
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1",
		"busy_timeout": "10000", "wal_autocheckpoint": "0", "journal_size_limit": "67108864"}
	for i, c := range conns {
		for pragma, v := range want {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != v {
				t.Errorf("connection %d: %s = %s, want %s", i, pragma, got, v)
			}
		}
		c.Close()
	}
}

// A data directory may hold characters that mean something in a URI.
func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b#c?d%41&e=f")
	path := filepath.Join(dir, "privicore.db")
	db := open(t, path)
	if err := db.Write(context.Background(), func(q privicore.Queries) error {
		return q.CreateProfile(context.Background(), profile("p1", "alice"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not where it was asked for: %v", err)
	}
	db = open(t, path)
	defer db.Close()
	if _, err := db.FindProfileByID(context.Background(), "p1"); err != nil {
		t.Fatalf("reopened: %v", err)
	}
}
