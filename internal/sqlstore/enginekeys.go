package sqlstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

// IsPostgres reports whether dsn names a PostgreSQL database (Open's rule:
// a postgres:// or postgresql:// URL); anything else is a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// AddSealedKey stores the sealed engine key named name unless one of that
// name is stored already: the first writer wins and a later one is a no-op,
// so that replicas starting at once keep one key (each reads back what is
// stored with SealedKey). It implements keyring.Store.
func (d *DB) AddSealedKey(ctx context.Context, name string, sealed []byte, createdAt time.Time) error {
	return d.Write(ctx, func(pq privicore.Queries) error {
		_, err := pq.(queries).exec(ctx, `INSERT INTO engine_keys (name, sealed, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, base64.StdEncoding.EncodeToString(sealed), nanos(createdAt))
		return dbErr(err)
	})
}

// SealedKey returns the sealed engine key stored under name; found is false
// when there is none. It implements keyring.Store.
func (d *DB) SealedKey(ctx context.Context, name string) (sealed []byte, found bool, err error) {
	var s string
	err = d.queries.row(ctx, `SELECT sealed FROM engine_keys WHERE name = ?`, name).Scan(&s)
	if isNoRows(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, dbErr(err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: engine key %q: stored value is not base64: %w", name, err)
	}
	return b, true, nil
}
