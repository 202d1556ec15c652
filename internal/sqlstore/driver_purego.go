//go:build !cgo

package sqlstore

import (
	"database/sql"
	"net/url"

	_ "modernc.org/sqlite" // SQLite driver, pure Go
)

// SQLiteDriver names the SQLite driver this build uses: builds without cgo
// (CGO_ENABLED=0, e.g. static or cross-compiled binaries) use the pure Go
// driver, with the same behaviour and more CPU per statement.
const SQLiteDriver = "modernc.org/sqlite (pure Go)"

// openSQLite opens the SQLite file at path.
func openSQLite(path string) (*sql.DB, error) {
	q := url.Values{"_txlock": {"immediate"}}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p[0]+"("+p[1]+")")
	}
	return sql.Open("sqlite", sqliteURI(path, q))
}
