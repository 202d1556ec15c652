package command_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// announcerOf is replica's recorded announcer (ok false if none).
func announcerOf(t *testing.T, db *sqlstore.DB, replica string) (privicore.Announcer, bool) {
	t.Helper()
	all, err := db.LapsedAnnouncers(context.Background(), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.Replica == replica {
			return a, true
		}
	}
	return privicore.Announcer{}, false
}

// A replica's announcer never claims an outcome whose ack it has not handed
// over yet: while a command's ack waits for its 202 (a Hold), the
// announcer's Through stays before the outcome, renewal after renewal;
// once the ack is out, Through passes it. A Stop with an ack still held
// leaves the announcer lapsed, for another replica to announce from
// Through; a Stop with nothing held removes it.
func TestAnnouncerWaitsForHeldAcks(t *testing.T) {
	ctx := context.Background()
	opts := command.Options{Replica: "r1", AnnounceEvery: 10 * time.Millisecond, Lease: time.Minute}
	db := openStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { db.Close() })
	rec := newRecorder()
	opts.Announcers = db
	p := command.New(db, rec, opts)
	p.Handle("inline", func(context.Context, privicore.Queries, *privicore.Command) (command.Result, error) {
		return command.Result{}, nil
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hctx, hold := command.WithHold(ctx)
	c, err := p.Submit(hctx, "x", "inline", "a")
	if err != nil || c.Status != privicore.CommandSucceeded {
		t.Fatalf("inline: %+v %v", c, err)
	}
	stored, err := db.FindCommand(ctx, c.ID)
	if err != nil || stored.Announcer != "r1" {
		t.Fatalf("the outcome's announcer: %+v %v", stored, err)
	}
	// Renewals well after the outcome (Until moves on; later than the
	// announcer's allowance for clock steps) keep Through before it.
	renewedAfter := stored.UpdatedAt.Add(time.Second)
	commandtest.Eventually(t, "renewals of the announcer after the outcome", func() bool {
		a, ok := announcerOf(t, db, "r1")
		return ok && a.Until.After(renewedAfter.Add(opts.Lease))
	})
	if a, _ := announcerOf(t, db, "r1"); !a.Through.Before(stored.UpdatedAt) {
		t.Fatalf("announcer through %v while the ack of the outcome at %v is held", a.Through, stored.UpdatedAt)
	}
	hold.Release()
	rec.wait(t, c.ID)
	commandtest.Eventually(t, "the announcer past the released ack", func() bool {
		a, ok := announcerOf(t, db, "r1")
		return ok && a.Through.After(stored.UpdatedAt)
	})

	// A Stop with an ack held leaves the announcer lapsed at Through.
	hctx, hold = command.WithHold(ctx)
	held, err := p.Submit(hctx, "x", "inline", "b")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	a, ok := announcerOf(t, db, "r1")
	if !ok || !a.Through.Before(held.UpdatedAt) || a.Until.After(time.Now()) {
		t.Fatalf("after a Stop with a held ack: %+v (recorded %v), want lapsed before %v", a, ok, held.UpdatedAt)
	}
	hold.Release()

	// A Stop with nothing held removes it.
	p = command.New(db, rec, opts)
	p.Handle("inline", func(context.Context, privicore.Queries, *privicore.Command) (command.Result, error) {
		return command.Result{}, nil
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if a, ok := announcerOf(t, db, "r1"); ok {
		t.Fatalf("a clean Stop left the announcer %+v", a)
	}
}
