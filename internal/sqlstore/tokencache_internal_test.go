package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

func TestTokenCacheStaysBoundedAndIndexed(t *testing.T) {
	c := newTokenCache(false)
	row := func(i, version int) *tokenRow {
		return &tokenRow{id: fmt.Sprint("d", i), tempToken: fmt.Sprint("tmp-", i), token: fmt.Sprint("dtk-", i, "-", version),
			reservationID: fmt.Sprint("r", i), blobID: fmt.Sprint("b", i, "-", version)}
	}
	for i := range 2 * tokenCacheSize {
		c.set(row(i, 0))
		if i%3 == 0 {
			c.set(row(i, 1)) // a new version: new token and blob
		}
		if i%5 == 0 {
			c.drop(fmt.Sprint("d", i))
		}
	}
	if len(c.rows) > tokenCacheSize {
		t.Fatalf("%d rows kept, bound %d", len(c.rows), tokenCacheSize)
	}
	// Every index entry leads to a kept row that has that key, and every
	// kept row is found by each of its keys.
	for k := byTempToken; k < tokenKeys; k++ {
		for v, r := range c.idx[k] {
			if c.rows[r.id] != r || r.keys()[k] != v {
				t.Fatalf("index %d: %q leads to %+v", k, v, r)
			}
		}
		if len(c.idx[k]) != len(c.rows) {
			t.Fatalf("index %d has %d entries for %d rows", k, len(c.idx[k]), len(c.rows))
		}
	}
	// Rows with large meta: the bytes kept are bounded too, and counted
	// right; an outsize row is not kept.
	big := strings.Repeat("m", 100<<10)
	for i := range 400 {
		r := row(i, 2)
		r.meta = big
		c.set(r)
	}
	sum := 0
	for _, r := range c.rows {
		sum += r.bytes()
	}
	if c.bytes != sum || c.bytes > tokenCacheBytes {
		t.Fatalf("bytes counted %d, kept %d, bound %d", c.bytes, sum, tokenCacheBytes)
	}
	huge := row(-1, 0)
	huge.meta = strings.Repeat("m", tokenCacheBytes/32)
	c.set(huge)
	if r, _ := c.get(byID, huge.id); r != nil {
		t.Fatal("an outsize row was kept")
	}
	// A read that overlapped an invalidation is not kept.
	r, gen := c.get(byID, "nope")
	if r != nil {
		t.Fatal("found a row never set")
	}
	c.beginCommit(nil)
	c.abortCommit(nil)
	c.put(&tokenRow{id: "nope"}, gen)
	if r, _ := c.get(byID, "nope"); r != nil {
		t.Fatal("a read older than an invalidation was kept")
	}
}

// TestWritesFillTheTokenCache checks that each kind of write leaves the
// row it wrote in the cache (the reads that follow it on the store path are
// then served without the database), exactly as the database has it.
func TestWritesFillTheTokenCache(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check := func(after string, tok *privicore.DataToken) {
		t.Helper()
		for k, v := range map[tokenKey]string{byID: tok.ID, byReservation: tok.ReservationID, byTempToken: tok.TempToken, byToken: tok.Token, byBlob: tok.BlobID} {
			if r, _ := db.tokens.get(k, v); v != "" && r == nil {
				t.Fatalf("after %s: key %d not cached", after, k)
			}
		}
		r, _ := db.tokens.get(byID, tok.ID)
		uncached := queries{q: db.db, d: db.dialect, cache: db.cache, tokens: newTokenCache(false)}
		read, err := uncached.FindDataToken(ctx, tok.ProfileID, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cached := r.dataToken(); fmt.Sprintf("%+v", cached) != fmt.Sprintf("%+v", read) {
			t.Fatalf("after %s:\ncached %+v\n  read %+v", after, cached, read)
		}
	}
	w := func(fn func(q privicore.Queries) error) {
		t.Helper()
		if err := db.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	tok := &privicore.DataToken{ID: "d1", ProfileID: "p", TempToken: "tmp-1", ReservationID: "r1", Context: "c",
		Meta: map[string]any{"data": map[string]any{"type": "x"}}, State: privicore.TokenReserved, ExpiresAt: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now}
	w(func(q privicore.Queries) error { return q.CreateDataToken(ctx, tok) })
	check("create", tok)
	// The row the cache computes for an update is the one before with the
	// written fields: each field alone, each time a stale copy for the rest.
	stale := *tok
	stale.Context, stale.State = "stale", "stale"
	w(func(q privicore.Queries) error {
		f := stale
		f.BlobID, f.Size, f.WrappedKey = "b1", 9, []byte("key")
		return q.FillReservation(ctx, &f, now)
	})
	tok.BlobID, tok.Size, tok.WrappedKey, tok.State = "b1", 9, []byte("key"), privicore.TokenStored
	check("fill reservation", tok)
	changes := map[privicore.DataTokenField]func(t *privicore.DataToken){
		privicore.FieldToken:     func(t *privicore.DataToken) { t.Token = "dtk-1" },
		privicore.FieldContext:   func(t *privicore.DataToken) { t.Context = "c2" },
		privicore.FieldMeta:      func(t *privicore.DataToken) { t.Meta = map[string]any{"file": map[string]any{"fileName": "f"}} },
		privicore.FieldState:     func(t *privicore.DataToken) { t.State = "other" },
		privicore.FieldPayload:   func(t *privicore.DataToken) { t.BlobID, t.Size, t.Chunks, t.WrappedKey = "b2", 3, 2, []byte("k2") },
		privicore.FieldExpiresAt: func(t *privicore.DataToken) { t.ExpiresAt = time.Time{} },
		privicore.FieldUpdatedAt: func(t *privicore.DataToken) { t.UpdatedAt = now.Add(time.Hour) },
	}
	for f := privicore.FieldToken; f <= privicore.FieldUpdatedAt; f++ {
		change := changes[f]
		if change == nil {
			t.Fatalf("field %d: no change to test it with", f)
		}
		c := stale
		change(&c)
		w(func(q privicore.Queries) error { return q.UpdateDataToken(ctx, &c, f) })
		change(tok)
		check(fmt.Sprintf("an update of field %d", f), tok)
	}
	// Two updates in one transaction: the second builds on the first.
	w(func(q privicore.Queries) error {
		a, b := *tok, *tok
		a.Context, b.Size = "both", 77
		if err := q.UpdateDataToken(ctx, &a, privicore.FieldContext); err != nil {
			return err
		}
		return q.UpdateDataToken(ctx, &b, privicore.FieldPayload)
	})
	tok.Context, tok.Size = "both", 77
	check("two updates in one transaction", tok)
	// A raw statement (as DB.Exec runs) and then an update of another field
	// in the same transaction: the update cannot build on the cached row.
	w(func(pq privicore.Queries) error {
		q := pq.(queries)
		q.log.rawStatement()
		if _, err := q.q.ExecContext(ctx, `UPDATE data_tokens SET context = 'raw' WHERE id = 'd1'`); err != nil {
			return err
		}
		c := *tok
		c.Size = 78
		return q.UpdateDataToken(ctx, &c, privicore.FieldPayload)
	})
	if r, _ := db.tokens.get(byID, "d1"); r != nil {
		t.Fatalf("after a raw statement: cached %+v", r.dataToken())
	}
	if got, err := db.FindDataToken(ctx, "p", "d1"); err != nil || got.Context != "raw" || got.Size != 78 {
		t.Fatalf("after a raw statement: %+v, %v", got, err)
	}
	// Outside Write, a data token write is refused: the cache could not
	// follow it.
	if err := db.CreateDataToken(ctx, &privicore.DataToken{ID: "d2"}); privicore.ErrorCode(err) != privicore.EINTERNAL {
		t.Fatalf("a write outside Write: %v", err)
	}
}

// While a transaction writing a row commits, a read of that row goes to the
// database and is not kept, even if it started after the commit began:
// another reader may already see the commit (a command's outcome) and must
// not then find the row from before it in the cache. Once applied, the
// cache holds the committed row.
func TestReadsDuringACommitAreNotKept(t *testing.T) {
	c := newTokenCache(false)
	old := &tokenRow{id: "t1", state: "reserved"}
	c.set(old)
	c.beginCommit([]string{"t1"})
	r, gen := c.get(byID, "t1")
	if r != nil {
		t.Fatal("a row being committed was served from the cache")
	}
	c.put(old, gen) // what the database still showed before the commit
	if r, _ := c.get(byID, "t1"); r != nil {
		t.Fatal("a read during a commit was kept")
	}
	l := &tokenLog{}
	l.add("t1", &tokenRow{id: "t1", state: "stored"})
	c.apply(l)
	if r, _ := c.get(byID, "t1"); r == nil || r.state != "stored" {
		t.Fatalf("after the commit: %+v", r)
	}
	if r, gen = c.get(byID, "t2"); r != nil {
		t.Fatal("found a row never set")
	}
	c.put(&tokenRow{id: "t2"}, gen)
	if r, _ := c.get(byID, "t2"); r == nil {
		t.Fatal("a read with no commit under way was not kept")
	}
}

// In cluster mode, a commit installs the rows it wrote unless another
// replica's write of the same row was heard of while it ran (the row it
// built on the cached one may miss that write): that row is dropped, the
// others are installed.
func TestACommitDoesNotInstallARowAnotherReplicaWroteMeanwhile(t *testing.T) {
	c := newTokenCache(true)
	peers := coherence.Local()
	c.listen(peers)
	l := &tokenLog{remote: c.remoteDrops()} // the transaction begins
	l.add("t1", &tokenRow{id: "t1", state: "stored"})
	l.add("t2", &tokenRow{id: "t2", state: "stored"})
	c.beginCommit(l.ids)
	peers.Publish(context.Background(), []coherence.Change{{Kind: coherence.DataToken, Key: "t1"}}) // another replica wrote t1
	c.apply(l)
	if r, _ := c.get(byID, "t1"); r != nil {
		t.Fatalf("installed %+v, which another replica wrote during the commit", r)
	}
	if r, _ := c.get(byID, "t2"); r == nil {
		t.Fatal("a row no other replica wrote was not installed")
	}
}
