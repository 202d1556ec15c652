package sqlstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestAnnouncers: an announcer is listed as lapsed once its Until has
// passed, and no longer once ended; the unannounced commands of a replica
// are its finished ones from Through on (not pending ones, not other
// replicas'), in (UpdatedAt, ID) order, paged without gaps or repeats
// across commands that share an UpdatedAt; a queued command's finish
// records its announcer.
func TestAnnouncers(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		mk := func(id, announcer string, at time.Time, status privicore.CommandStatus) *privicore.Command {
			return &privicore.Command{ID: id, ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: status, CreatedAt: at, UpdatedAt: at, Key: id, Announcer: announcer}
		}
		commandtest.Write(t, db, func(q privicore.Queries) error {
			for _, c := range []*privicore.Command{
				mk("old", "r1", t0.Add(-time.Second), privicore.CommandSucceeded), // before Through
				mk("c", "r1", t0, privicore.CommandSucceeded), mk("a", "r1", t0, privicore.CommandRejected), mk("b", "r1", t0, privicore.CommandSucceeded),
				mk("d", "r1", t0.Add(time.Millisecond), privicore.CommandSucceeded),
				mk("other", "r2", t0, privicore.CommandSucceeded), mk("pending", "", t0, privicore.CommandPending),
			} {
				if err := q.CreateCommand(ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		var got []string
		since, after := t0, ""
		for range 10 {
			page, err := db.UnannouncedCommands(ctx, "r1", since, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if len(page) < 2 {
				break
			}
			since, after = page[len(page)-1].UpdatedAt, page[len(page)-1].ID
		}
		if strings.Join(got, ",") != "a,b,c,d" {
			t.Fatalf("r1's unannounced commands from t0, two at a time: %v, want a,b,c,d", got)
		}

		if err := db.KeepAnnouncer(ctx, privicore.Announcer{Replica: "r1", Through: t0, Until: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := db.KeepAnnouncer(ctx, privicore.Announcer{Replica: "r2", Through: t0, Until: t0.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		lapsed := func(at time.Time) string {
			t.Helper()
			as, err := db.LapsedAnnouncers(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range as {
				ids = append(ids, a.Replica)
			}
			return strings.Join(ids, ",")
		}
		if got := lapsed(t0.Add(2 * time.Second)); got != "r2" {
			t.Fatalf("lapsed 2 s on: %q, want r2", got)
		}
		if err := db.KeepAnnouncer(ctx, privicore.Announcer{Replica: "r2", Through: t0, Until: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if got := lapsed(t0.Add(2 * time.Minute)); got != "r1" {
			t.Fatalf("lapsed 2 min on, r2 renewed: %q, want r1", got)
		}
		if err := db.EndAnnouncer(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
		if got := lapsed(t0.Add(2 * time.Hour)); got != "r2" {
			t.Fatalf("lapsed after r1 ended: %q, want r2", got)
		}

		// A queued command's finish records its announcer.
		commandtest.Write(t, db, func(q privicore.Queries) error {
			return q.CreateCommand(ctx, mk("q", "", t0, privicore.CommandPending))
		})
		commandtest.Write(t, db, func(q privicore.Queries) error {
			cmds, _, err := q.ClaimCommands(ctx, "r3", t0, t0.Add(time.Minute), 10)
			if err == nil && !slices.ContainsFunc(cmds, func(c *privicore.Command) bool { return c.ID == "q" }) {
				t.Errorf("claimed %d commands, not q", len(cmds))
			}
			return err
		})
		commandtest.Write(t, db, func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "q", "r3", privicore.CommandSucceeded, "ok", t0.Add(time.Second), "r3")
		})
		if c, err := db.FindCommand(ctx, "q"); err != nil || c.Announcer != "r3" {
			t.Fatalf("the finished command: %+v %v, want announcer r3", c, err)
		}
	})
}
