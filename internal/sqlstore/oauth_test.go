package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

// The reads of a profile's OAuth applications filter by the profile: the
// owner finds its application by id and by client id, another profile
// finds nothing. The client authentication (FindOAuthClient) finds it for
// anyone, by client id alone.
func TestOAuthApplicationReadsAreScopedToTheProfile(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		app := &privicore.OAuthApplication{ID: "app1", ProfileID: "pa", Name: "n", RedirectURI: "https://x/cb",
			Scopes: []string{privicore.ScopeProfileRead}, ClientID: "client1", CreatedAt: now}
		if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateOAuthApplication(ctx, app) }); err != nil {
			t.Fatal(err)
		}
		if got, err := db.FindOAuthApplication(ctx, "pa", "app1"); err != nil || got.ClientID != "client1" {
			t.Fatalf("owner's read by id: %+v %v", got, err)
		}
		if got, err := db.FindOAuthApplicationByClientID(ctx, "pa", "client1"); err != nil || got.ID != "app1" {
			t.Fatalf("owner's read by client id: %+v %v", got, err)
		}
		if _, err := db.FindOAuthApplication(ctx, "pb", "app1"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("another profile's read by id: %v, want ENOTFOUND", err)
		}
		if _, err := db.FindOAuthApplicationByClientID(ctx, "pb", "client1"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("another profile's read by client id: %v, want ENOTFOUND", err)
		}
		if got, err := db.FindOAuthClient(ctx, "client1"); err != nil || got.ID != "app1" || got.ProfileID != "pa" {
			t.Fatalf("client lookup: %+v %v", got, err)
		}
		if _, err := db.FindOAuthClient(ctx, "client2"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("unknown client: %v, want ENOTFOUND", err)
		}
	})
}

// A grant is read by id only within its application; by its code's hash
// it is found whoever asks (the code is the credential).
func TestOAuthCodeReadsAreScopedToTheApplication(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		c := &privicore.OAuthCode{ID: "code1", ApplicationID: "app1", ProfileID: "pa", Nonce: "n1",
			Scopes: []string{privicore.ScopeProfileRead}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		err := db.Write(ctx, func(q privicore.Queries) error {
			if err := q.CreateOAuthCode(ctx, c); err != nil {
				return err
			}
			return q.SetOAuthCodeHash(ctx, "code1", "hash1", now)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := db.FindOAuthCode(ctx, "app1", "code1"); err != nil || got.Nonce != "n1" {
			t.Fatalf("the application's read: %+v %v", got, err)
		}
		if _, err := db.FindOAuthCode(ctx, "app2", "code1"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("another application's read: %v, want ENOTFOUND", err)
		}
		if got, err := db.FindOAuthCodeByHash(ctx, "hash1"); err != nil || got.ID != "code1" {
			t.Fatalf("read by hash: %+v %v", got, err)
		}
	})
}

// FindProfileCommand finds a command only for the profile that submitted it.
func TestFindProfileCommandIsScopedToTheProfile(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		c := &privicore.Command{ID: "c1", ProfileID: "pa", Type: "x", Payload: []byte(`{}`), Status: privicore.CommandPending,
			CreatedAt: now, UpdatedAt: now}
		if err := db.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, c) }); err != nil {
			t.Fatal(err)
		}
		if got, err := db.FindProfileCommand(ctx, "pa", "c1"); err != nil || got.Type != "x" {
			t.Fatalf("the profile's read: %+v %v", got, err)
		}
		if _, err := db.FindProfileCommand(ctx, "pb", "c1"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
			t.Fatalf("another profile's read: %v, want ENOTFOUND", err)
		}
	})
}
