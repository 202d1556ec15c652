//go:build cgo

package sqlstore

import (
	"database/sql"
	"net/url"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// SQLiteDriver names the SQLite driver this build uses.
//
// The cgo driver is the default because the engine's hot path is SQLite
// and it costs the engine less CPU per store than the pure Go driver
// (docs/performance.md); CGO_ENABLED=0 builds use the pure Go one.
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
