package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestCommandLeases: a pending command is claimed by one owner at a time,
// the first of its key only; a finish by a replica that no longer holds the
// lease is refused; an expired lease is claimable by another; a held
// command lets the next of its key go and, resumed, goes behind it; an
// Origin reservation keeps the command from other replicas until it lapses.
func TestCommandLeases(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		t0 := time.Now().UTC()
		mk := func(id, key string) *privicore.Command {
			return &privicore.Command{ID: id, ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: privicore.CommandPending, CreatedAt: t0, UpdatedAt: t0, Key: key}
		}
		write := func(fn func(q privicore.Queries) error) { t.Helper(); commandtest.Write(t, db, fn) }
		claim := func(owner string, now time.Time) []string {
			t.Helper()
			var ids []string
			write(func(q privicore.Queries) error {
				cmds, _, err := q.ClaimCommands(ctx, owner, now, now.Add(time.Minute), 10)
				for _, c := range cmds {
					ids = append(ids, c.ID)
				}
				return err
			})
			return ids
		}
		write(func(q privicore.Queries) error {
			for _, c := range []*privicore.Command{mk("a1", "a"), mk("a2", "a"), mk("b1", "b")} {
				if err := q.CreateCommand(ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if got := claim("r1", t0); len(got) != 2 || got[0] != "a1" || got[1] != "b1" {
			t.Fatalf("r1 claimed %v, want the first of each key [a1 b1]", got)
		}
		if got := claim("r2", t0); len(got) != 0 {
			t.Fatalf("r2 claimed %v while r1 holds the leases", got)
		}
		var free bool
		write(func(q privicore.Queries) (err error) { free, err = q.CommandKeyFree(ctx, "a"); return err })
		if free {
			t.Fatal("key a is free with pending commands")
		}
		// r1's lease on a1 expires; r2 takes it, and r1's finish is refused.
		later := t0.Add(2 * time.Minute)
		if got := claim("r2", later); len(got) != 2 || got[0] != "a1" {
			t.Fatalf("after the leases expired r2 claimed %v, want [a1 b1]", got)
		}
		err := db.Write(ctx, func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "a1", "r1", privicore.CommandSucceeded, "", later, "")
		})
		if privicore.ErrorCode(err) != privicore.ECONFLICT {
			t.Fatalf("finish by the replica whose lease expired: %v, want ECONFLICT", err)
		}
		// r2 holds a1 (a vote): a2 goes; resumed, a1 comes after a2.
		write(func(q privicore.Queries) error {
			held, err := q.HoldCommand(ctx, "a1", "r2")
			if err == nil && !held {
				t.Error("HoldCommand did not hold")
			}
			return err
		})
		if got := claim("r2", later); len(got) != 1 || got[0] != "a2" {
			t.Fatalf("with a1 held r2 claimed %v, want [a2]", got)
		}
		write(func(q privicore.Queries) error { return q.ResumeCommand(ctx, "a1") })
		write(func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "a2", "r2", privicore.CommandSucceeded, "", later, "")
		})
		write(func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "b1", "r2", privicore.CommandSucceeded, "", later, "")
		})
		if got := claim("r1", later); len(got) != 1 || got[0] != "a1" {
			t.Fatalf("after a2 finished r1 claimed %v, want the resumed [a1]", got)
		}
		write(func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "a1", "r1", privicore.CommandSucceeded, "", later, "")
		})
		// Origin: r3's command is left to it until its reservation lapses.
		c := mk("c1", "c")
		c.Origin, c.OriginUntil = "r3", later.Add(time.Minute)
		write(func(q privicore.Queries) error { return q.CreateCommand(ctx, c) })
		if got := claim("r1", later); len(got) != 0 {
			t.Fatalf("r1 claimed %v, reserved for r3", got)
		}
		if got := claim("r1", later.Add(2*time.Minute)); len(got) != 1 || got[0] != "c1" {
			t.Fatalf("after r3's reservation lapsed r1 claimed %v, want [c1]", got)
		}
	})
}
