package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestStageCommand: only the replica holding a pending command's lease
// records what its Prepare did; the record reads back byte for byte with
// the command (also from a claim) and ends its Origin reservation, so that
// another replica may claim it at once; a finished command takes none.
func TestStageCommand(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		t0 := time.Now().UTC()
		c := &privicore.Command{ID: "s1", ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: privicore.CommandPending, CreatedAt: t0, UpdatedAt: t0, Key: "s1",
			Origin: "r1", OriginUntil: t0.Add(time.Hour)}
		staged := []byte(`{"blob":"b1","wrapped":"AAEC"}`)
		var claimed []*privicore.Command
		if err := db.Write(ctx, func(q privicore.Queries) (err error) {
			if err := q.CreateCommand(ctx, c); err != nil {
				return err
			}
			claimed, _, err = q.ClaimCommands(ctx, "r1", t0, t0.Add(time.Minute), 10)
			return err
		}); err != nil || len(claimed) != 1 || len(claimed[0].Staged) != 0 {
			t.Fatalf("claimed %v (%v), want s1 with nothing staged", claimed, err)
		}
		stage := func(owner string) error {
			return db.Write(ctx, func(q privicore.Queries) error { return q.StageCommand(ctx, "s1", owner, staged) })
		}
		if err := stage("r2"); privicore.ErrorCode(err) != privicore.ECONFLICT {
			t.Fatalf("a replica without the lease staged the command: %v", err)
		}
		if got, _ := db.FindCommand(ctx, "s1"); len(got.Staged) != 0 {
			t.Fatalf("staged %q by a replica without the lease", got.Staged)
		}
		if err := stage("r1"); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindCommand(ctx, "s1")
		if err != nil || string(got.Staged) != string(staged) || got.Origin != "" {
			t.Fatalf("after staging: staged %q origin %q (%v)", got.Staged, got.Origin, err)
		}
		// r1's lease released (it stopped): r2 claims it with the record,
		// though r1's Origin reservation had an hour to run.
		if err := db.Write(ctx, func(q privicore.Queries) error { return q.ReleaseCommandLeases(ctx, "r1") }); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(q privicore.Queries) (err error) {
			claimed, _, err = q.ClaimCommands(ctx, "r2", t0, t0.Add(time.Minute), 10)
			return err
		}); err != nil || len(claimed) != 1 || string(claimed[0].Staged) != string(staged) {
			t.Fatalf("r2 claimed %v (%v), want s1 with its record", claimed, err)
		}
		if err := db.Write(ctx, func(q privicore.Queries) error {
			return q.FinishCommand(ctx, "s1", "r2", privicore.CommandSucceeded, "ok", t0, "")
		}); err != nil {
			t.Fatal(err)
		}
		if err := stage("r2"); privicore.ErrorCode(err) != privicore.ECONFLICT {
			t.Fatalf("a finished command was staged: %v", err)
		}
	})
}
