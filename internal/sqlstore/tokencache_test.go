package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// reservation is an open reservation numbered n.
func reservation(n int) *privicore.DataToken {
	now := time.Now().UTC()
	return &privicore.DataToken{ID: fmt.Sprintf("d%d", n), ProfileID: "p", TempToken: fmt.Sprintf("tmp-%d", n), ReservationID: fmt.Sprintf("r%d", n),
		Context: "c0", Meta: map[string]any{}, State: privicore.TokenReserved, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
}

// lookups reads the token by every key it has, twice each (the second
// read is served by the token cache if the first filled it), and checks
// they all agree; it returns what they read, or the error they all had.
func lookups(t *testing.T, db *sqlstore.DB, tok *privicore.DataToken) (*privicore.DataToken, error) {
	t.Helper()
	ctx := context.Background()
	finds := map[string]func() (*privicore.DataToken, error){
		"id":         func() (*privicore.DataToken, error) { return db.FindDataToken(ctx, tok.ProfileID, tok.ID) },
		"temp token": func() (*privicore.DataToken, error) { return db.FindDataToken(ctx, tok.ProfileID, tok.TempToken) },
		"reservation": func() (*privicore.DataToken, error) {
			return db.FindDataTokenByReservation(ctx, tok.ProfileID, tok.ReservationID)
		},
	}
	if tok.Token != "" {
		finds["token"] = func() (*privicore.DataToken, error) { return db.FindDataToken(ctx, tok.ProfileID, tok.Token) }
	}
	if tok.BlobID != "" {
		finds["blob"] = func() (*privicore.DataToken, error) { return db.FindDataTokenByBlob(ctx, tok.BlobID) }
	}
	var first *privicore.DataToken
	var firstErr error
	n := 0
	for by, find := range finds {
		for range 2 {
			got, err := find()
			if n == 0 {
				first, firstErr = got, err
			}
			n++
			if privicore.ErrorCode(err) != privicore.ErrorCode(firstErr) {
				t.Fatalf("by %s: %v, by another key: %v", by, err, firstErr)
			}
			if err == nil && (got.Context != first.Context || got.BlobID != first.BlobID || got.Token != first.Token || got.State != first.State) {
				t.Fatalf("by %s: %+v, by another key: %+v", by, got, first)
			}
		}
	}
	return first, firstErr
}

func TestTokenReadsFollowEveryWrite(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		w := func(fn func(q privicore.Queries) error) {
			t.Helper()
			if err := db.Write(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		tok := reservation(1)
		if _, err := lookups(t, db, tok); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("before it exists: %v", err)
		}
		w(func(q privicore.Queries) error { return q.CreateDataToken(ctx, tok) })
		if got, err := lookups(t, db, tok); err != nil || got.Context != "c0" || got.State != privicore.TokenReserved {
			t.Fatalf("created: %+v, %v", got, err)
		}
		// Every kind of write, each after reads that may have cached the row.
		steps := []struct {
			name  string
			write func(q privicore.Queries) error
			check func(got *privicore.DataToken) bool
		}{
			{"conditional update", func(q privicore.Queries) error {
				version := tok.UpdatedAt
				tok.Context, tok.UpdatedAt = "c1", tok.UpdatedAt.Add(time.Second)
				return q.UpdateDataTokenIf(ctx, tok, version, privicore.FieldContext, privicore.FieldUpdatedAt)
			}, func(got *privicore.DataToken) bool { return got.Context == "c1" }},
			{"fill reservation", func(q privicore.Queries) error {
				tok.BlobID, tok.Size, tok.WrappedKey = "b1", 42, []byte("wrapped")
				return q.FillReservation(ctx, tok, time.Now())
			}, func(got *privicore.DataToken) bool {
				return got.State == privicore.TokenStored && got.BlobID == "b1" && got.Size == 42 && string(got.WrappedKey) == "wrapped"
			}},
			{"made permanent", func(q privicore.Queries) error {
				tok.Token, tok.Meta = "dtk-1", map[string]any{"file": map[string]any{"fileName": "a.txt"}}
				return q.UpdateDataToken(ctx, tok, privicore.FieldToken, privicore.FieldMeta)
			}, func(got *privicore.DataToken) bool {
				file, _ := got.Meta["file"].(map[string]any)
				return got.Token == "dtk-1" && file["fileName"] == "a.txt"
			}},
			{"new payload", func(q privicore.Queries) error {
				tok.BlobID, tok.Size = "b2", 7
				return q.UpdateDataToken(ctx, tok, privicore.FieldPayload)
			}, func(got *privicore.DataToken) bool { return got.BlobID == "b2" && got.Size == 7 }},
		}
		for _, s := range steps {
			w(s.write)
			if got, err := lookups(t, db, tok); err != nil || !s.check(got) {
				t.Fatalf("after %s: %+v, %v", s.name, got, err)
			}
		}
		// The payload it no longer has does not lead to it.
		if got, err := db.FindDataTokenByBlob(ctx, "b1"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("by its old blob: %+v, %v", got, err)
		}
		// A change that is rolled back is not seen.
		failed := errors.New("rolled back")
		if err := db.Write(ctx, func(q privicore.Queries) error {
			c := *tok
			c.Context = "rolled back"
			if err := q.UpdateDataToken(ctx, &c, privicore.FieldContext); err != nil {
				return err
			}
			return failed
		}); !errors.Is(err, failed) {
			t.Fatal(err)
		}
		if got, err := lookups(t, db, tok); err != nil || got.Context != "c1" {
			t.Fatalf("after a rolled-back update: %+v, %v", got, err)
		}
		// A statement run outside the writer is seen too.
		if _, err := db.Exec(ctx, `UPDATE data_tokens SET context = ? WHERE id = ?`, "exec", tok.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := lookups(t, db, tok); err != nil || got.Context != "exec" {
			t.Fatalf("after Exec: %+v, %v", got, err)
		}
		w(func(q privicore.Queries) error { return q.DeleteDataToken(ctx, tok.ID) })
		if got, err := lookups(t, db, tok); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("deleted: %+v, %v", got, err)
		}
	})
}

func TestTokenCacheKeepsOnlyCommittedWritesOfABatch(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		const n = 64
		for i := range n {
			if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateDataToken(ctx, reservation(i)) }); err != nil {
				t.Fatal(err)
			}
			lookups(t, db, reservation(i))
		}
		// Concurrent writes share commits; the odd ones fail after writing,
		// so their batch is run again with each write in a savepoint.
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db.Write(ctx, func(q privicore.Queries) error {
					tok := reservation(i)
					tok.Context = "changed"
					if err := q.UpdateDataToken(ctx, tok, privicore.FieldContext); err != nil {
						return err
					}
					if i%2 == 1 {
						return errors.New("fails")
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i := range n {
			got, err := lookups(t, db, reservation(i))
			if want := map[bool]string{true: "c0", false: "changed"}[i%2 == 1]; err != nil || got.Context != want {
				t.Fatalf("token %d: %+v, %v; want context %q", i, got, err, want)
			}
		}
	})
}

// TestTokenReadsNeverGoBackInTime reads a token from many goroutines while
// another updates it: no read may return a version older than one whose
// write had already returned when the read began (a read racing a commit
// must not put a stale row back in the cache).
func TestTokenReadsNeverGoBackInTime(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		tok := reservation(1)
		if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateDataToken(ctx, tok) }); err != nil {
			t.Fatal(err)
		}
		var acked atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var bad atomic.Value
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					floor := acked.Load()
					got, err := db.FindDataToken(ctx, tok.ProfileID, tok.TempToken)
					if err != nil {
						bad.CompareAndSwap(nil, err.Error())
						return
					}
					if v, _ := strconv.ParseInt(got.Context[1:], 10, 64); v < floor {
						bad.CompareAndSwap(nil, fmt.Sprintf("read version %d after version %d was written", v, floor))
						return
					}
				}
			}()
		}
		for v := int64(1); v <= 300 && bad.Load() == nil; v++ {
			c := *tok
			c.Context = "c" + strconv.FormatInt(v, 10)
			if err := db.Write(ctx, func(q privicore.Queries) error { return q.UpdateDataToken(ctx, &c, privicore.FieldContext) }); err != nil {
				t.Fatal(err)
			}
			acked.Store(v)
		}
		close(stop)
		wg.Wait()
		if msg := bad.Load(); msg != nil {
			t.Fatal(msg)
		}
	})
}
