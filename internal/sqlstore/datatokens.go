package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

const dataTokenCols = `id, profile_id, temp_token, token, reservation_id, blob_id, context, meta, file_name, file_extension, data_type, state, size, chunks, wrapped_key, application, expires_at, created_at, updated_at`

// metaString returns meta[object][key] as text, for the indexed filter columns.
func metaString(meta map[string]any, object, key string) string {
	o, _ := meta[object].(map[string]any)
	s, _ := o[key].(string)
	return s
}

// rowOf is t as its data_tokens row. The meta is marshalled only when
// withMeta: an update that does not write it needs none.
func rowOf(t *privicore.DataToken, withMeta bool) *tokenRow {
	r := &tokenRow{id: t.ID, profileID: t.ProfileID, tempToken: t.TempToken, token: t.Token, reservationID: t.ReservationID,
		blobID: t.BlobID, context: t.Context, state: t.State, size: t.Size, chunks: t.Chunks,
		wrapped: base64.StdEncoding.EncodeToString(t.WrappedKey), application: t.Application,
		expires: nanos(t.ExpiresAt), created: nanos(t.CreatedAt), updated: nanos(t.UpdatedAt)}
	if withMeta {
		r.meta = "{}"
		if t.Meta != nil {
			meta, _ := json.Marshal(t.Meta)
			r.meta = string(meta)
		}
	}
	return r
}

// arg is r's value of column i of dataTokenCols, for a token with meta.
func (r *tokenRow) arg(i int, meta map[string]any) any {
	switch i {
	case 0:
		return r.id
	case 1:
		return r.profileID
	case 2:
		return r.tempToken
	case 3:
		if r.token == "" {
			return nil
		}
		return r.token
	case 4:
		return r.reservationID
	case 5:
		return r.blobID
	case 6:
		return r.context
	case 7:
		return r.meta
	case 8:
		return metaString(meta, "file", "fileName")
	case 9:
		return metaString(meta, "file", "extension")
	case 10:
		return metaString(meta, "data", "type")
	case 11:
		return r.state
	case 12:
		return r.size
	case 13:
		return r.chunks
	case 14:
		return r.wrapped
	case 15:
		return r.application
	case 16:
		return r.expires
	case 17:
		return r.created
	default:
		return r.updated
	}
}

// args are the values of dataTokenCols for r, a token with meta.
func (r *tokenRow) args(meta map[string]any) []any {
	a := make([]any, 19)
	for i := range a {
		a[i] = r.arg(i, meta)
	}
	return a
}

// with returns r with src's values of fields (see dataTokenColumns).
func (r tokenRow) with(src *tokenRow, fields ...privicore.DataTokenField) *tokenRow {
	for _, f := range fields {
		switch f {
		case privicore.FieldToken:
			r.token = src.token
		case privicore.FieldContext:
			r.context = src.context
		case privicore.FieldMeta:
			r.meta = src.meta
		case privicore.FieldState:
			r.state = src.state
		case privicore.FieldPayload:
			r.blobID, r.size, r.chunks, r.wrapped = src.blobID, src.size, src.chunks, src.wrapped
		case privicore.FieldExpiresAt:
			r.expires = src.expires
		case privicore.FieldUpdatedAt:
			r.updated = src.updated
		}
	}
	return &r
}

// CreateDataToken implements privicore.DataTokenStore.
func (q queries) CreateDataToken(ctx context.Context, t *privicore.DataToken) error {
	r := rowOf(t, true)
	return q.writeToken(t.ID, func() (*tokenRow, error) {
		_, err := q.exec(ctx, `INSERT INTO data_tokens (`+dataTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.args(t.Meta)...)
		return r, dbErr(err)
	})
}

// writeToken runs write, which changes the data_tokens row id and returns
// it as written (nil when it deleted it or cannot tell), and logs it for
// the token cache (which follows at commit, see tokenCache). Data tokens
// are written only inside DB.Write: elsewhere the cache could not follow.
func (q queries) writeToken(id string, write func() (*tokenRow, error)) error {
	if q.log == nil {
		return privicore.Errorf(privicore.EINTERNAL, "data tokens are written only inside Write")
	}
	r, err := write()
	if err != nil {
		r = nil // nothing or not known to be written: only drop it
	}
	q.log.add(id, r)
	return err
}

// current returns the row id as this write transaction sees it, when that
// is known without reading it: as the transaction last wrote it, else as
// committed, from the token cache (which, seen from the writer, holds only
// committed rows). nil when not known.
func (q queries) current(id string) *tokenRow {
	for i := len(q.log.ids) - 1; i >= 0; i-- {
		if q.log.ids[i] == id {
			return q.log.rows[i]
		}
		if q.log.ids[i] == "" {
			return nil // after a raw statement (DB.Exec) the cache is no guide
		}
	}
	r, _ := q.tokens.get(byID, id)
	return r
}

// updateTokenRow runs an UPDATE of the data_tokens row id and reports how
// many rows (0 or 1) it changed; change turns the row before the update
// into the row after it.
func (q queries) updateTokenRow(ctx context.Context, id string, change func(before tokenRow) *tokenRow, query string, args ...any) (int64, error) {
	var n int64
	err := q.writeToken(id, func() (*tokenRow, error) {
		var err error
		if n, err = affected(q.exec(ctx, query, args...)); err != nil || n == 0 {
			return nil, err
		}
		if before := q.current(id); before != nil {
			return change(*before), nil
		}
		return nil, nil
	})
	return n, err
}

// findToken returns the row whose key k is v: from the token cache outside
// a write transaction, else (and on a miss, or without a cache) from the
// database.
func (q queries) findToken(ctx context.Context, owner profileScope, k tokenKey, v string) (*privicore.DataToken, error) {
	col := [tokenKeys]string{byID: "id", byTempToken: "temp_token", byToken: "token", byReservation: "reservation_id", byBlob: "blob_id"}[k]
	read := func() (*tokenRow, error) {
		if owner.any {
			return scanTokenRow(q.row(ctx, `SELECT `+dataTokenReadCols+` FROM data_tokens WHERE `+col+` = ?`, v))
		}
		return scanTokenRow(q.row(ctx, `SELECT `+dataTokenReadCols+` FROM data_tokens WHERE `+col+` = ? AND profile_id = ?`, v, owner.id))
	}
	if q.tx != nil {
		r, err := read()
		if err != nil {
			return nil, err
		}
		return r.dataToken(), nil
	}
	r, gen := q.tokens.get(k, v)
	if r == nil {
		var err error
		if r, err = read(); err != nil {
			return nil, err
		}
		q.tokens.put(r, gen)
	}
	if !owner.any && r.profileID != owner.id {
		// Cached, and another profile's: as the scoped query would say.
		return nil, notFound("data token")
	}
	return r.dataToken(), nil
}

// profileScope is whose token a read may find: one profile's (id), or
// anyone's (any) for the reads that have no profile.
type profileScope struct {
	id  string
	any bool
}

// anyProfile scopes a read to no profile (FindDataTokenByBlob, FindDataTokenByID).
var anyProfile = profileScope{any: true}

// scoped scopes a read to profileID's tokens.
func scoped(profileID string) profileScope { return profileScope{id: profileID} }

// dataTokenColumns are the columns behind each field, as indexes into
// dataTokenCols (tokenRow.arg).
func dataTokenColumns(f privicore.DataTokenField) (cols []string, idx []int) {
	switch f {
	case privicore.FieldToken:
		return []string{"token"}, []int{3}
	case privicore.FieldContext:
		return []string{"context"}, []int{6}
	case privicore.FieldMeta:
		return []string{"meta", "file_name", "file_extension", "data_type"}, []int{7, 8, 9, 10}
	case privicore.FieldState:
		return []string{"state"}, []int{11}
	case privicore.FieldPayload:
		return []string{"blob_id", "size", "chunks", "wrapped_key"}, []int{5, 12, 13, 14}
	case privicore.FieldExpiresAt:
		return []string{"expires_at"}, []int{16}
	case privicore.FieldUpdatedAt:
		return []string{"updated_at"}, []int{18}
	}
	return nil, nil
}

// dataTokenSet is the SET clause and its values writing fields of r, a
// token with meta.
func dataTokenSet(r *tokenRow, meta map[string]any, fields ...privicore.DataTokenField) (set string, args []any) {
	var cols []string
	for _, f := range fields {
		c, idx := dataTokenColumns(f)
		cols = append(cols, c...)
		for _, i := range idx {
			args = append(args, r.arg(i, meta))
		}
	}
	return strings.Join(cols, " = ?, ") + " = ?", args
}

// allDataTokenFields is what UpdateDataToken writes when told nothing.
var allDataTokenFields = []privicore.DataTokenField{privicore.FieldToken, privicore.FieldContext, privicore.FieldMeta,
	privicore.FieldState, privicore.FieldPayload, privicore.FieldExpiresAt, privicore.FieldUpdatedAt}

// UpdateDataToken implements privicore.DataTokenStore.
func (q queries) UpdateDataToken(ctx context.Context, t *privicore.DataToken, fields ...privicore.DataTokenField) error {
	n, err := q.updateDataToken(ctx, t, "", nil, fields)
	if err == nil && n == 0 {
		return notFound("data token")
	}
	return err
}

// UpdateDataTokenIf implements privicore.DataTokenStore.
func (q queries) UpdateDataTokenIf(ctx context.Context, t *privicore.DataToken, version time.Time, fields ...privicore.DataTokenField) error {
	n, err := q.updateDataToken(ctx, t, " AND updated_at = ?", []any{nanos(version)}, fields)
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "data token changed meanwhile")
	}
	return err
}

// updateDataToken writes fields of t (all when none) where the id and cond match.
func (q queries) updateDataToken(ctx context.Context, t *privicore.DataToken, cond string, condArgs []any, fields []privicore.DataTokenField) (int64, error) {
	if len(fields) == 0 {
		fields = allDataTokenFields
	}
	r := rowOf(t, slices.Contains(fields, privicore.FieldMeta))
	set, args := dataTokenSet(r, t.Meta, fields...)
	args = append(append(args, t.ID), condArgs...)
	return q.updateTokenRow(ctx, t.ID, func(before tokenRow) *tokenRow { return before.with(r, fields...) },
		`UPDATE data_tokens SET `+set+` WHERE id = ?`+cond, args...)
}

// FillReservation implements privicore.DataTokenStore.
func (q queries) FillReservation(ctx context.Context, t *privicore.DataToken, now time.Time) error {
	r := rowOf(t, false)
	set, args := dataTokenSet(r, t.Meta, privicore.FieldPayload)
	args = append(args, privicore.TokenStored, nanos(now), t.ID, privicore.TokenReserved, nanos(now))
	n, err := q.updateTokenRow(ctx, t.ID, func(before tokenRow) *tokenRow {
		after := before.with(r, privicore.FieldPayload)
		after.state, after.updated = privicore.TokenStored, nanos(now)
		return after
	}, `UPDATE data_tokens SET `+set+`, state = ?, updated_at = ?
		WHERE id = ? AND state = ? AND expires_at > ?`, args...)
	if err == nil && n == 0 {
		return privicore.Errorf(privicore.ECONFLICT, "not an open reservation")
	}
	return err
}

// DeleteDataToken implements privicore.DataTokenStore.
func (q queries) DeleteDataToken(ctx context.Context, id string) error {
	return q.writeToken(id, func() (*tokenRow, error) {
		_, err := q.exec(ctx, `DELETE FROM data_tokens WHERE id = ?`, id)
		return nil, dbErr(err)
	})
}

// FindDataToken implements privicore.DataTokenStore.
func (q queries) FindDataToken(ctx context.Context, profileID, idOrToken string) (*privicore.DataToken, error) {
	k := byID
	switch {
	case strings.HasPrefix(idOrToken, "tmp-"):
		k = byTempToken
	case strings.HasPrefix(idOrToken, "dtk-"):
		k = byToken
	}
	return q.findToken(ctx, scoped(profileID), k, idOrToken)
}

// FindDataTokenByID implements privicore.DataTokenStore.
func (q queries) FindDataTokenByID(ctx context.Context, id string) (*privicore.DataToken, error) {
	return q.findToken(ctx, anyProfile, byID, id)
}

// FindProfileDataTokenByBlob implements privicore.DataTokenStore.
func (q queries) FindProfileDataTokenByBlob(ctx context.Context, profileID, blobID string) (*privicore.DataToken, error) {
	if blobID == "" {
		return nil, notFound("data token")
	}
	return q.findToken(ctx, scoped(profileID), byBlob, blobID)
}

// FindDataTokenByBlob implements privicore.DataTokenStore.
func (q queries) FindDataTokenByBlob(ctx context.Context, blobID string) (*privicore.DataToken, error) {
	if blobID == "" {
		return nil, notFound("data token")
	}
	return q.findToken(ctx, anyProfile, byBlob, blobID)
}

// FindDataTokenByReservation implements privicore.DataTokenStore.
func (q queries) FindDataTokenByReservation(ctx context.Context, profileID, commandID string) (*privicore.DataToken, error) {
	return q.findToken(ctx, scoped(profileID), byReservation, commandID)
}

// ListDataTokens implements privicore.DataTokenStore.
func (q queries) ListDataTokens(ctx context.Context, profileID string, f privicore.DataTokenFilter) ([]*privicore.DataToken, int, error) {
	where := ` FROM data_tokens WHERE profile_id = ? AND state = ?`
	args := []any{profileID, privicore.TokenStored}
	add := func(cond, v string) {
		if v != "" {
			where += " AND " + cond
			args = append(args, v)
		}
	}
	add("context = ?", f.Context)
	if f.Token != "" {
		where += " AND (token = ? OR temp_token = ?)"
		args = append(args, f.Token, f.Token)
	}
	add("file_name = ?", f.FileName)
	add("file_extension = ?", f.Extension)
	add("data_type = ?", f.DataType)
	var total int
	if err := q.row(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err)
	}
	rows, err := q.rows(ctx, `SELECT `+dataTokenReadCols+where+` ORDER BY created_at, id LIMIT ? OFFSET ?`,
		append(args, f.PerPage, (f.Page-1)*f.PerPage)...)
	if err != nil {
		return nil, 0, dbErr(err)
	}
	defer rows.Close()
	out := []*privicore.DataToken{}
	for rows.Next() {
		t, err := scanDataToken(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, t)
	}
	return out, total, dbErr(rows.Err())
}

// ExpiredDataTokens implements privicore.DataTokenStore.
func (q queries) ExpiredDataTokens(ctx context.Context, before time.Time, limit int) ([]*privicore.DataToken, error) {
	return collect(ctx, q, scanDataToken, `SELECT `+dataTokenReadCols+` FROM data_tokens WHERE token IS NULL AND expires_at > 0 AND expires_at < ? ORDER BY expires_at LIMIT ?`, nanos(before), limit)
}
