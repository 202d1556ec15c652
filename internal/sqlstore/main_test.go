package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestMain stops the test PostgreSQL (started only with
// PRIVICORE_TEST_DATABASE=postgres) after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// onBothDialects runs fn on a fresh SQLite database and, with
// PRIVICORE_TEST_DATABASE=postgres, on a fresh PostgreSQL one: for queries
// whose SQL the two dialects could read differently.
func onBothDialects(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
		defer db.Close()
		fn(t, db)
	})
	if os.Getenv("PRIVICORE_TEST_DATABASE") != "postgres" {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		db, err := sqlstore.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		fn(t, db)
	})
}
