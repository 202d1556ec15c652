package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// A profile's reads of data tokens and commands find only its own: another
// profile's token is ENOTFOUND by every key, whether the row is in the
// token cache (just written or read) or not; the unscoped reads (by blob,
// by id) find it for whoever has no profile.
func TestDataTokenAndCommandReadsAreScopedByProfile(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		tok := reservation(1)
		tok.Token, tok.BlobID, tok.State = "dtk-1", "b1", privicore.TokenStored
		now := time.Now().UTC()
		cmd := &privicore.Command{ID: "c1", ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: privicore.CommandSucceeded, CreatedAt: now, UpdatedAt: now}
		if err := db.Write(ctx, func(q privicore.Queries) error {
			if err := q.CreateDataToken(ctx, tok); err != nil {
				return err
			}
			return q.CreateCommand(ctx, cmd)
		}); err != nil {
			t.Fatal(err)
		}
		reads := map[string]func(profileID string) (*privicore.DataToken, error){
			"id":         func(p string) (*privicore.DataToken, error) { return db.FindDataToken(ctx, p, tok.ID) },
			"temp token": func(p string) (*privicore.DataToken, error) { return db.FindDataToken(ctx, p, tok.TempToken) },
			"token":      func(p string) (*privicore.DataToken, error) { return db.FindDataToken(ctx, p, tok.Token) },
			"reservation": func(p string) (*privicore.DataToken, error) {
				return db.FindDataTokenByReservation(ctx, p, tok.ReservationID)
			},
			"blob": func(p string) (*privicore.DataToken, error) { return db.FindProfileDataTokenByBlob(ctx, p, tok.BlobID) },
		}
		for round := range 2 { // the second round reads from the cache the first filled
			for by, read := range reads {
				if _, err := read("q"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
					t.Fatalf("round %d, by %s: another profile read it: %v", round, by, err)
				}
				if got, err := read("p"); err != nil || got.ID != tok.ID {
					t.Fatalf("round %d, by %s: the owner: %+v %v", round, by, got, err)
				}
			}
		}
		for by, read := range map[string]func() (*privicore.DataToken, error){
			"blob": func() (*privicore.DataToken, error) { return db.FindDataTokenByBlob(ctx, tok.BlobID) },
			"id":   func() (*privicore.DataToken, error) { return db.FindDataTokenByID(ctx, tok.ID) },
		} {
			if got, err := read(); err != nil || got.ProfileID != "p" {
				t.Fatalf("unscoped by %s: %+v %v", by, got, err)
			}
		}
		if _, err := db.FindProfileCommand(ctx, "q", cmd.ID); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("another profile read the command: %v", err)
		}
		if got, err := db.FindProfileCommand(ctx, "p", cmd.ID); err != nil || got.ID != cmd.ID {
			t.Fatalf("the owner's command: %+v %v", got, err)
		}
	})
}
