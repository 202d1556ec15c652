package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

func pool(id, profileID, commandID string, expires time.Time) *privicore.Pool {
	now := time.Now().UTC()
	return &privicore.Pool{ID: id, ProfileID: profileID, CommandID: commandID, Event: "voting.create", Detail: map[string]any{},
		Strategy: privicore.StrategyUnanimous, Percentage: 100, QuorumSize: 1, TimeLimit: 60, Eligible: []string{"d1", "d2"},
		Attempt: 1, MaxAttempts: 2, State: privicore.PoolOpen, CreatedAt: now, ExpiresAt: expires}
}

// A pool is found only under its own profile: another profile asking for
// it, by id or by the command it holds, gets ENOTFOUND, in the transaction
// (Queries) and outside it (Store); the owner gets it with the current
// attempt's answers. OpenPools, the engine's own sweep, spans profiles.
func TestPoolReadsAreScopedToTheirProfile(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		soon := time.Now().UTC().Add(time.Minute).Truncate(time.Millisecond)
		if err := db.Write(ctx, func(q privicore.Queries) error {
			if err := q.CreatePool(ctx, pool("pool-a", "alice", "cmd-a", soon)); err != nil {
				return err
			}
			if err := q.CreatePool(ctx, pool("pool-b", "bob", "cmd-b", soon.Add(time.Second))); err != nil {
				return err
			}
			return q.AddPoolAnswer(ctx, "pool-a", 1, privicore.PoolAnswer{DeviceID: "d1", Yes: true, At: soon})
		}); err != nil {
			t.Fatal(err)
		}
		type reads struct {
			find      func(profileID, id string) (*privicore.Pool, error)
			byCommand func(profileID, commandID string) (*privicore.Pool, error)
		}
		check := func(r reads) string {
			if p, err := r.find("alice", "pool-a"); err != nil || p.ID != "pool-a" || len(p.Answers) != 1 || !p.Answers[0].Yes {
				return "the owner's FindPool: " + errText(err)
			}
			if p, err := r.byCommand("alice", "cmd-a"); err != nil || p.ID != "pool-a" || len(p.Answers) != 1 {
				return "the owner's FindPoolByCommand: " + errText(err)
			}
			if _, err := r.find("bob", "pool-a"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				return "another profile's FindPool: " + errText(err)
			}
			if _, err := r.byCommand("bob", "cmd-a"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				return "another profile's FindPoolByCommand: " + errText(err)
			}
			if _, err := r.find("alice", "pool-b"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				return "FindPool of bob's pool for alice: " + errText(err)
			}
			return ""
		}
		if broken := check(reads{
			find:      func(p, id string) (*privicore.Pool, error) { return db.FindPool(ctx, p, id) },
			byCommand: func(p, id string) (*privicore.Pool, error) { return db.FindPoolByCommand(ctx, p, id) },
		}); broken != "" {
			t.Error("store:", broken)
		}
		var broken string
		if err := db.Write(ctx, func(q privicore.Queries) error {
			broken = check(reads{
				find:      func(p, id string) (*privicore.Pool, error) { return q.FindPool(ctx, p, id) },
				byCommand: func(p, id string) (*privicore.Pool, error) { return q.FindPoolByCommand(ctx, p, id) },
			})
			return nil
		}); err != nil || broken != "" {
			t.Error("queries:", broken, err)
		}
		open, err := db.OpenPools(ctx, time.Time{}, 10)
		if err != nil || len(open) != 2 || open[0].ID != "pool-a" || open[1].ID != "pool-b" {
			t.Errorf("OpenPools spans the profiles, soonest first: %v %v", open, err)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
