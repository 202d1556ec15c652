//go:build cgo

package sqlstore

import (
	"database/sql"
	"net/url"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// SQLiteDriver names the SQLite driver this build uses.
//
// The cgo driver is the default because the engine's hot path is SQLite:
// measured on the store load (scripts/ab.sh 8 4, 2026-12-01), the pure Go
// driver needed 961 µs of engine CPU per full store (median of 4) and this
// one 845, for 1 098 vs 1 250 stores/s; BenchmarkFindToken 13.0 vs 7.5 µs.
const SQLiteDriver = "mattn/go-sqlite3 (cgo)"

func init() {
	sql.Register("privicore-sqlite", &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, p := range sqlitePragmas {
			if _, err := c.Exec("PRAGMA "+p[0]+" = "+p[1], nil); err != nil {
				return err
			}
		}
		return nil
	}})
}

// openSQLite opens the SQLite file at path. database/sql never shares a
// connection between goroutines, so SQLite's per-connection mutex is off.
func openSQLite(path string) (*sql.DB, error) {
	return sql.Open("privicore-sqlite", sqliteURI(path, url.Values{"_txlock": {"immediate"}, "_mutex": {"no"}}))
}
