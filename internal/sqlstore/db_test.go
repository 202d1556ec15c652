package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

func open(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func profile(id, username string) *privicore.Profile {
	now := time.Now().UTC()
	return &privicore.Profile{ID: id, Username: username, PasswordHash: "h", CreatedAt: now, UpdatedAt: now}
}

func TestWriteIsolatesFailingWritesInABatch(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	defer db.Close()

	// Many concurrent writes share commits; the failing ones roll back alone.
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = db.Write(ctx, func(q privicore.Queries) error {
				if err := q.CreateProfile(ctx, profile(fmt.Sprintf("p%03d", i), fmt.Sprintf("user%03d", i))); err != nil {
					return err
				}
				if i%2 == 1 {
					return errors.New("refused") // rolls back the insert above
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		_, findErr := db.FindProfileByID(ctx, fmt.Sprintf("p%03d", i))
		if i%2 == 0 {
			if err != nil || findErr != nil {
				t.Fatalf("write %d: err=%v find=%v, want committed", i, err, findErr)
			}
		} else if err == nil || privicore.ErrorCode(findErr) != privicore.ENOTFOUND {
			t.Fatalf("write %d: err=%v find=%v, want rolled back", i, err, findErr)
		}
	}
}

func TestUsernameUniqueCaseInsensitively(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	defer db.Close()
	if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateProfile(ctx, profile("a", "Alice")) }); err != nil {
		t.Fatal(err)
	}
	err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateProfile(ctx, profile("b", "aLICE")) })
	if privicore.ErrorCode(err) != privicore.ECONFLICT || privicore.ErrorReason(err) != "profile.username_taken" {
		t.Fatalf("duplicate username: %v", err)
	}
	p, err := db.FindProfileByUsername(ctx, "ALICE")
	if err != nil || p.ID != "a" || p.Username != "Alice" {
		t.Fatalf("find: %+v %v", p, err)
	}
}

func TestCommandFinishesOnceAndSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db := open(t, path)
	now := time.Now().UTC()
	c := &privicore.Command{ID: "c1", Type: "x", Payload: []byte(`{"a":1}`), Status: privicore.CommandPending, CreatedAt: now, UpdatedAt: now}
	if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, c) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	defer db.Close()
	pending, err := db.PendingCommands(ctx, 10)
	if err != nil || len(pending) != 1 || string(pending[0].Payload) != `{"a":1}` {
		t.Fatalf("pending after reopen: %v %v", pending, err)
	}
	finish := func() error {
		return db.Write(ctx, func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "c1", "", privicore.CommandSucceeded, "ok", now, "")
		})
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if err := finish(); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("second finish: %v, want conflict", err)
	}
	got, _ := db.FindCommand(ctx, "c1")
	if got.Status != privicore.CommandSucceeded || got.Body != "ok" {
		t.Fatalf("command: %+v", got)
	}
}

func TestTokensSingleUseAndRevocation(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	defer db.Close()
	now := time.Now().UTC()
	tok := &privicore.Token{ID: "h1", ProfileID: "p", Kind: privicore.TokenQR, Role: "storage", Scope: []string{"all"}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	w := func(fn func(q privicore.Queries) error) error { return db.Write(ctx, fn) }
	if err := w(func(q privicore.Queries) error { return q.CreateToken(ctx, tok) }); err != nil {
		t.Fatal(err)
	}
	if err := w(func(q privicore.Queries) error { return q.UseToken(ctx, "h1", now) }); err != nil {
		t.Fatal(err)
	}
	if err := w(func(q privicore.Queries) error { return q.UseToken(ctx, "h1", now) }); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("second use: %v", err)
	}
	if err := w(func(q privicore.Queries) error { return q.RevokeToken(ctx, "h1", now) }); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindToken(ctx, "h1")
	if err != nil || got.Valid(now) || got.Role != "storage" || len(got.Scope) != 1 {
		t.Fatalf("token: %+v %v", got, err)
	}
	n, err := db.DeleteExpiredTokens(ctx, now.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("delete expired: %d %v", n, err)
	}
}

func TestWriteAfterCloseIsUnavailable(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	db.Close()
	err := db.Write(context.Background(), func(q privicore.Queries) error { return nil })
	if privicore.ErrorCode(err) != privicore.EUNAVAILABLE {
		t.Fatalf("write after close: %v", err)
	}
}

func TestConditionalDataTokenUpdates(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db.sqlite"))
	defer db.Close()
	now := time.Now().UTC()
	tok := &privicore.DataToken{ID: "d1", ProfileID: "p", TempToken: "tmp-1", ReservationID: "r1", Context: "c",
		Meta: map[string]any{}, State: privicore.TokenReserved, ExpiresAt: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now}
	w := func(fn func(q privicore.Queries) error) error { return db.Write(ctx, fn) }
	if err := w(func(q privicore.Queries) error { return q.CreateDataToken(ctx, tok) }); err != nil {
		t.Fatal(err)
	}
	// A stale version changes nothing.
	stale := *tok
	stale.Context, stale.UpdatedAt = "stale", now.Add(time.Second)
	if err := w(func(q privicore.Queries) error {
		return q.UpdateDataTokenIf(ctx, &stale, now.Add(-time.Second), privicore.FieldContext, privicore.FieldUpdatedAt)
	}); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("stale version: %v", err)
	}
	fresh := *tok
	fresh.Context, fresh.UpdatedAt = "fresh", now.Add(time.Second)
	if err := w(func(q privicore.Queries) error {
		return q.UpdateDataTokenIf(ctx, &fresh, now, privicore.FieldContext, privicore.FieldUpdatedAt)
	}); err != nil {
		t.Fatal(err)
	}
	// Filling a reservation: only while open and unexpired.
	fill := *tok
	fill.BlobID, fill.Size = "b1", 42
	if err := w(func(q privicore.Queries) error { return q.FillReservation(ctx, &fill, now.Add(2*time.Minute)) }); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("expired reservation filled: %v", err)
	}
	if err := w(func(q privicore.Queries) error { return q.FillReservation(ctx, &fill, now) }); err != nil {
		t.Fatal(err)
	}
	if err := w(func(q privicore.Queries) error { return q.FillReservation(ctx, &fill, now) }); privicore.ErrorCode(err) != privicore.ECONFLICT {
		t.Fatalf("reservation filled twice: %v", err)
	}
	got, _ := db.FindDataToken(ctx, "p", "d1")
	if got.Context != "fresh" || got.State != privicore.TokenStored || got.BlobID != "b1" || got.Size != 42 || got.TempToken != "tmp-1" {
		t.Fatalf("token %+v", got)
	}
}

func TestWALStartsOverUnderSteadyLoad(t *testing.T) {
	defer sqlstore.SetCheckpointing(50*time.Millisecond, 256)()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db := open(t, path)
	defer db.Close()

	// The writer never idles (16 writers, readers alongside): without the
	// writer's own checkpoint the WAL would never start over.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var largest int64
	deadline := time.Now().Add(3 * time.Second)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("p%02d-%06d", w, i)
				if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateProfile(ctx, profile(id, "u"+id)) }); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.FindProfileByID(ctx, id); err != nil {
					t.Error(err)
					return
				}
				if fi, err := os.Stat(path + "-wal"); err == nil {
					mu.Lock()
					largest = max(largest, fi.Size())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	var n int
	if err := db.SQL().QueryRow("SELECT count(*) FROM profiles").Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Every 50 ms adds a few MiB (a profile costs ≈ 10 KiB of WAL in small
	// commits); without starting over the WAL holds them all (≈ 300 MiB).
	t.Logf("%d profiles, largest WAL %d KiB", n, largest>>10)
	if largest > 32<<20 {
		t.Fatalf("the WAL grew to %d KiB for %d profiles: it does not start over", largest>>10, n)
	}
}

// addCommand records a command of profileID created at at.
func addCommand(t *testing.T, db *sqlstore.DB, id, profileID, typ string, status privicore.CommandStatus, at time.Time) {
	t.Helper()
	ctx := context.Background()
	c := &privicore.Command{ID: id, ProfileID: profileID, Type: typ, Payload: []byte(`{}`), Status: status, CreatedAt: at, UpdatedAt: at}
	if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, c) }); err != nil {
		t.Fatal(err)
	}
}

// Statistics count in the database, per type and UTC day: only succeeded
// commands of the asked types, of the profile, within [from, to).
func TestCommandCountsPerTypeAndDay(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		day1 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
		day2 := day1.Add(24 * time.Hour)
		n := 0
		add := func(profileID, typ string, status privicore.CommandStatus, at time.Time) {
			n++
			addCommand(t, db, fmt.Sprintf("c%02d", n), profileID, typ, status, at)
		}
		ok := privicore.CommandSucceeded
		add("p", "x", ok, day1)                       // first instant of day 1
		add("p", "x", ok, day2.Add(-time.Nanosecond)) // last instant of day 1
		add("p", "x", ok, day2)                       // day 2
		add("p", "y", ok, day2.Add(time.Hour))
		add("p", "x", privicore.CommandRejected, day2)
		add("p", "x", privicore.CommandPending, day2)
		add("p", "z", ok, day2) // a type not asked for
		add("q", "x", ok, day2) // another profile
		add("p", "x", ok, day1.Add(-time.Hour))

		counts, err := db.CommandCounts(ctx, "p", []string{"x", "y"}, day1, day2.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []privicore.CommandCount{{Type: "x", Day: day1, N: 2}, {Type: "x", Day: day2, N: 1}, {Type: "y", Day: day2, N: 1}}
		if fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Fatalf("counts %v, want %v", counts, want)
		}
		// Unbounded: the command before day 1 too.
		counts, err = db.CommandCounts(ctx, "p", []string{"x"}, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 3 || counts[0].Day != day1.Add(-24*time.Hour) || counts[0].N != 1 {
			t.Fatalf("unbounded counts %v", counts)
		}
	})
}

// Pruning removes the finished commands older than the cut-off, in
// batches, never a pending one, and the statistics stay what they were.
func TestPruneCommandsKeepsStatistics(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		day1 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		cut := day1.Add(3 * 24 * time.Hour)
		for i := range 25 { // 25 old commands over three days, for two profiles
			status := privicore.CommandSucceeded
			if i%5 == 0 {
				status = privicore.CommandRejected
			}
			addCommand(t, db, fmt.Sprintf("old%02d", i), []string{"p", "q"}[i%2], []string{"x", "y"}[i%3%2], status, day1.Add(time.Duration(i)*2*time.Hour))
		}
		addCommand(t, db, "pending", "p", "x", privicore.CommandPending, day1)
		addCommand(t, db, "recent", "p", "x", privicore.CommandSucceeded, cut.Add(time.Hour))
		before := map[string]string{}
		for _, p := range []string{"p", "q"} {
			c, err := db.CommandCounts(ctx, p, []string{"x", "y"}, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			before[p] = fmt.Sprint(c)
		}

		total := 0
		for {
			var n int
			if err := db.Write(ctx, func(q privicore.Queries) (err error) {
				n, err = q.PruneCommands(ctx, cut, 10)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if n > 10 {
				t.Fatalf("a batch of %d, limit 10", n)
			}
			if total += n; n == 0 {
				break
			}
		}
		if total != 25 {
			t.Fatalf("pruned %d, want the 25 old finished commands", total)
		}
		for _, id := range []string{"old00", "old13", "old24"} {
			if _, err := db.FindCommand(ctx, id); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				t.Fatalf("%s: %v after pruning", id, err)
			}
		}
		for _, id := range []string{"pending", "recent"} {
			if _, err := db.FindCommand(ctx, id); err != nil {
				t.Fatalf("%s was pruned: %v", id, err)
			}
		}
		for _, p := range []string{"p", "q"} {
			c, err := db.CommandCounts(ctx, p, []string{"x", "y"}, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c) != before[p] {
				t.Fatalf("profile %s: counts %v after pruning, %s before", p, c, before[p])
			}
		}
		// Whole pruned days count within a range, days outside do not.
		c, err := db.CommandCounts(ctx, "p", []string{"x", "y"}, day1.Add(24*time.Hour), day1.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range c {
			if !e.Day.Equal(day1.Add(24 * time.Hour)) {
				t.Fatalf("range of one day gave %v", c)
			}
		}
		if len(c) == 0 {
			t.Fatal("the pruned day's counts are missing")
		}
	})
}

// FindTokenWithProfile reads a token and its profile in one query, on both
// dialects: the two as FindToken and FindProfileByID return them, a nil
// profile when it is gone, ENOTFOUND for an unknown token.
func TestFindTokenWithProfile(t *testing.T) {
	pgtest.EachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := open(t, dsn)
		defer db.Close()
		now := time.Now().UTC()
		w := func(fn func(q privicore.Queries) error) {
			t.Helper()
			if err := db.Write(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		p := profile("p1", "owner")
		p.PublicKey, p.GivenName = "key", "Given"
		w(func(q privicore.Queries) error { return q.CreateProfile(ctx, p) })
		for _, tok := range []*privicore.Token{
			{ID: "h1", ProfileID: "p1", Kind: privicore.TokenAuth, Scope: []string{"all", "data"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			{ID: "h2", ProfileID: "gone", Kind: privicore.TokenAuth, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		} {
			w(func(q privicore.Queries) error { return q.CreateToken(ctx, tok) })
		}
		tok, prof, err := db.FindTokenWithProfile(ctx, "h1")
		wantTok, _ := db.FindToken(ctx, "h1")
		wantProf, _ := db.FindProfileByID(ctx, "p1")
		if err != nil || !reflect.DeepEqual(tok, wantTok) || !reflect.DeepEqual(prof, wantProf) {
			t.Fatalf("got %+v %+v (%v), want %+v %+v", tok, prof, err, wantTok, wantProf)
		}
		if tok, prof, err := db.FindTokenWithProfile(ctx, "h2"); err != nil || tok == nil || tok.ProfileID != "gone" || prof != nil {
			t.Fatalf("a token whose profile is gone: %+v %+v %v", tok, prof, err)
		}
		if _, _, err := db.FindTokenWithProfile(ctx, "nope"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("an unknown token: %v", err)
		}
	})
}
