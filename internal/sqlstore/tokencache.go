package sqlstore

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

// tokenRow is a data_tokens row as stored (dataTokenReadCols): immutable
// once built, so the cache can hand it to any number of readers, each of
// which decodes its own privicore.DataToken.
type tokenRow struct {
	id, profileID, tempToken, token, reservationID, blobID string
	context, meta, state, wrapped, application             string
	size                                                   int64
	chunks                                                 int
	expires, created, updated                              int64
}

// dataTokenReadCols are the columns a tokenRow holds (the file_name,
// file_extension and data_type columns are derived from meta, for filters).
const dataTokenReadCols = `id, profile_id, temp_token, token, reservation_id, blob_id, context, meta, state, size, chunks, wrapped_key, application, expires_at, created_at, updated_at`

// scanTokenRow scans one row of dataTokenReadCols; ENOTFOUND when there is none.
func scanTokenRow(row interface{ Scan(...any) error }) (*tokenRow, error) {
	var r tokenRow
	var token sql.NullString
	err := row.Scan(&r.id, &r.profileID, &r.tempToken, &token, &r.reservationID, &r.blobID, &r.context, &r.meta,
		&r.state, &r.size, &r.chunks, &r.wrapped, &r.application, &r.expires, &r.created, &r.updated)
	if isNoRows(err) {
		return nil, notFound("data token")
	} else if err != nil {
		return nil, dbErr(err)
	}
	r.token = token.String
	return &r, nil
}

// dataToken decodes the row into a data token of the caller's own.
func (r *tokenRow) dataToken() *privicore.DataToken {
	t := &privicore.DataToken{ID: r.id, ProfileID: r.profileID, TempToken: r.tempToken, Token: r.token, ReservationID: r.reservationID,
		BlobID: r.blobID, Context: r.context, State: r.state, Size: r.size, Chunks: r.chunks, Application: r.application,
		ExpiresAt: fromNanos(r.expires), CreatedAt: fromNanos(r.created), UpdatedAt: fromNanos(r.updated)}
	json.Unmarshal([]byte(r.meta), &t.Meta)
	if t.Meta == nil {
		t.Meta = map[string]any{}
	}
	t.WrappedKey, _ = base64.StdEncoding.DecodeString(r.wrapped)
	return t
}

// scanDataToken scans one row of dataTokenReadCols into a data token.
func scanDataToken(row interface{ Scan(...any) error }) (*privicore.DataToken, error) {
	r, err := scanTokenRow(row)
	if err != nil {
		return nil, err
	}
	return r.dataToken(), nil
}

// tokenKey names what a token is looked up by.
type tokenKey int

const (
	byID tokenKey = iota
	byTempToken
	byToken
	byReservation
	byBlob
	tokenKeys
)

// keys returns the row's value of every tokenKey ("" when it has none).
func (r *tokenRow) keys() [tokenKeys]string {
	return [tokenKeys]string{r.id, r.tempToken, r.token, r.reservationID, r.blobID}
}

// The cache's bounds: rows, and bytes of their text (a row's meta can be
// tens of KiB; most are below 1 KiB).
const (
	tokenCacheSize  = 16384
	tokenCacheBytes = 16 << 20
)

// bytes is about what r takes in memory.
func (r *tokenRow) bytes() int {
	return 128 + len(r.id) + len(r.profileID) + len(r.tempToken) + len(r.token) + len(r.reservationID) + len(r.blobID) +
		len(r.context) + len(r.meta) + len(r.state) + len(r.wrapped) + len(r.application)
}

// tokenCache keeps the data_tokens rows the engine wrote or read recently,
// so that the reads of the store and retrieval paths (three per store: the
// temporary token, the exchange's reservation, the file meta's token) do
// not go to the database. In SQLite's WAL mode they are dear under writes:
// every commit empties each reading connection's page cache, so each read
// fetched its pages again.
//
// On SQLite, whose file one engine owns, that engine is the only writer
// and the cache hears of every write. A PostgreSQL database may be shared
// by replicas (cluster mode): there the cache is used only while the
// peers are Valid (DB.SetPeers; never before), every commit publishes the
// ids of the rows it wrote to the other replicas, whose caches drop them
// before the commit's outcome is told (coherence.DataToken), and a commit
// that wrote a row another replica's drop named while it ran drops the row
// instead of installing it (the row it started from may predate that
// write). Within
// one engine, every write of data_tokens goes
// through DB.Write and this package's data token methods, which log the
// rows they wrote in their transaction's tokenLog: an insert's row is what
// it inserted; an update's is the row before it (as this transaction last
// wrote it, else as committed: the cache, seen from the writer, holds only
// committed rows) with the written columns; when neither is known, the row
// is only dropped. DB.Exec logs that any row may have changed. Just after
// the commit, before any caller of Write learns of its outcome, the writer
// installs the rows the transaction wrote (apply). A read that misses goes
// to the database and keeps what it read only if nothing was installed or
// dropped meanwhile (gen), so a read that overlapped a commit cannot put
// back a row older than the commit. While a commit is under way its rows
// are not in the cache and no read is kept (beginCommit), so a reader that
// already sees what the commit wrote elsewhere (a command's outcome) reads
// the row from the database too.
//
// Reads inside a write transaction never use the cache: they must see the
// transaction's own writes.
type tokenCache struct {
	// shared: other replicas write the table too; the cache is then used
	// only while peers are Valid. peers (set by DB.SetPeers) are also the
	// ones the DB publishes every commit's changes to.
	shared bool
	peers  atomic.Pointer[coherence.Peers]
	mu     sync.Mutex
	gen    uint64 // bumped by every install and drop
	remote uint64 // bumped by every drop another replica's write caused
	// remoteAt is remote as of the last drop of a row by another
	// replica's write (bounded: past remoteAtMax it is cleared and
	// remoteFloor raised, so every transaction begun before counts as
	// having seen a drop of every row).
	remoteAt    map[string]uint64
	remoteFloor uint64
	// committing counts the commits under way (beginCommit until apply or
	// invalidate): while one is, no read from the database is kept, since
	// it may predate a commit other readers already see.
	committing int
	rows       map[string]*tokenRow            // by id
	idx        [tokenKeys]map[string]*tokenRow // by each key but the id
	bytes      int                             // of the rows kept (tokenRow.bytes)
}

func newTokenCache(shared bool) *tokenCache {
	c := &tokenCache{shared: shared, rows: map[string]*tokenRow{}, remoteAt: map[string]uint64{}}
	for k := byTempToken; k < tokenKeys; k++ {
		c.idx[k] = map[string]*tokenRow{}
	}
	return c
}

// get returns the cached row whose key k is v, or nil and the generation a
// read from the database must be stored with (put).
func (c *tokenCache) get(k tokenKey, v string) (*tokenRow, uint64) {
	if !c.valid() {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var r *tokenRow
	if k == byID {
		r = c.rows[v]
	} else {
		r = c.idx[k][v]
	}
	if r == nil {
		return nil, c.gen
	}
	return r, 0
}

// put keeps r, read from the database when the cache was at generation gen,
// unless an invalidation happened since.
func (c *tokenCache) put(r *tokenRow, gen uint64) {
	if !c.valid() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.committing == 0 {
		c.set(r)
	}
}

// valid reports whether the cache may be used: always alone on SQLite;
// while the peers are Valid when shared.
func (c *tokenCache) valid() bool {
	return !c.shared || c.peers.Load().Valid()
}

// listen makes the cache hear of the other replicas' writes through peers.
func (c *tokenCache) listen(peers *coherence.Peers) {
	peers.Handle(coherence.DataToken, c.droppedByAnother)
	peers.OnFlush(func() { c.droppedByAnother("") })
	c.peers.Store(peers)
}

// droppedByAnother drops row id ("": every row) for another replica's
// write of it, or a flush.
func (c *tokenCache) droppedByAnother(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remote++
	if id == "" || len(c.remoteAt) >= remoteAtMax {
		clear(c.remoteAt)
		c.remoteFloor = c.remote // every transaction under way has seen a drop of every row
	}
	if id == "" {
		c.gen++
		c.dropAll()
		return
	}
	c.remoteAt[id] = c.remote
	c.invalidateLocked([]string{id})
}

// remoteAtMax bounds tokenCache.remoteAt.
const remoteAtMax = 65536

// droppedElsewhere reports whether another replica's write dropped row id
// since remote was seen (a transaction began). Callers hold mu.
func (c *tokenCache) droppedElsewhere(id string, remote uint64) bool {
	return remote < c.remoteFloor || c.remoteAt[id] > remote
}

// remoteDrops is the count of drops other replicas' writes caused so far:
// a transaction takes it when it begins (tokenLog.remote).
func (c *tokenCache) remoteDrops() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remote
}

// beginCommit drops the rows of ids, which a transaction is committing:
// until it is applied (or invalidated), reads of them go to the database
// and are not kept.
func (c *tokenCache) beginCommit(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.committing++
	for _, id := range ids {
		if id == "" {
			c.dropAll()
			continue
		}
		c.drop(id)
	}
}

// abortCommit ends a commit (beginCommit) that failed: its rows are
// dropped.
func (c *tokenCache) abortCommit(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.committing--
	c.invalidateLocked(ids)
}

func (c *tokenCache) invalidateLocked(ids []string) {
	c.gen++
	for _, id := range ids {
		c.drop(id)
	}
}

// dropAll drops every row. Callers hold mu.
func (c *tokenCache) dropAll() {
	clear(c.rows)
	c.bytes = 0
	for k := byTempToken; k < tokenKeys; k++ {
		clear(c.idx[k])
	}
}

// apply installs what a committed transaction wrote (ending its
// beginCommit), in order: a row as
// written, or nothing (dropped) where the row was deleted or is not known;
// everything is dropped at a raw statement (DB.Exec).
func (c *tokenCache) apply(l *tokenLog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.committing--
	for i, id := range l.ids {
		switch r := l.rows[i]; {
		case id == "":
			c.dropAll()
		case r != nil && !c.droppedElsewhere(id, l.remote):
			// (A row another replica's write dropped since the transaction
			// began may have been built on what the cache held before it.)
			c.set(r)
		default:
			c.drop(id)
		}
	}
}

// set keeps r in place of any row with its id, evicting arbitrary rows
// while full. Callers hold mu.
func (c *tokenCache) set(r *tokenRow) {
	c.drop(r.id)
	n := r.bytes()
	if n > tokenCacheBytes/64 {
		return // an outsize row is read from the database
	}
	for len(c.rows) >= tokenCacheSize || c.bytes+n > tokenCacheBytes {
		for id := range c.rows {
			c.drop(id)
			break
		}
	}
	c.rows[r.id] = r
	c.bytes += n
	for k, v := range r.keys() {
		if k != int(byID) && v != "" {
			c.idx[k][v] = r
		}
	}
}

// drop removes the row with id and its index entries. Callers hold mu.
func (c *tokenCache) drop(id string) {
	r := c.rows[id]
	if r == nil {
		return
	}
	delete(c.rows, id)
	c.bytes -= r.bytes()
	for k, v := range r.keys() {
		if k != int(byID) && v != "" && c.idx[k][v] == r {
			delete(c.idx[k], v)
		}
	}
}

// tokenLog records what one write transaction changed: the data_tokens
// rows it wrote, in order (the row as written, or nil where it was deleted
// or is not known; an empty id where the transaction ran a raw statement,
// rawStatement), and the changes other caches must hear of (note).
type tokenLog struct {
	ids    []string
	rows   []*tokenRow
	notes  []coherence.Change
	remote uint64 // the cache's remoteDrops when the transaction began
}

func (l *tokenLog) add(id string, r *tokenRow) {
	l.ids = append(l.ids, id)
	l.rows = append(l.rows, r)
}

// rawStatement notes a statement that may have changed any row.
func (l *tokenLog) rawStatement() {
	l.add("", nil)
	l.notes = append(l.notes, coherence.Change{})
}

// note records a change of kind to key (coherence.Change), published once
// the transaction commits.
func (l *tokenLog) note(kind, key string) {
	l.notes = append(l.notes, coherence.Change{Kind: kind, Key: key})
}

// logMark is where a savepoint's writes begin in a tokenLog.
type logMark struct{ ids, notes int }

// mark and rollback forget what a write rolled back to its savepoint did.
func (l *tokenLog) mark() logMark { return logMark{len(l.ids), len(l.notes)} }

func (l *tokenLog) rollback(m logMark) {
	l.ids, l.rows, l.notes = l.ids[:m.ids], l.rows[:m.ids], l.notes[:m.notes]
}
