package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/sqlstore"
)

func device(id, profileID, requestID, clientID string) *privicore.Device {
	now := time.Now().UTC()
	return &privicore.Device{ID: id, ProfileID: profileID, RequestCommandID: requestID, Name: id, DisplayName: id,
		Tags: []string{}, Meta: map[string]any{}, Role: privicore.RoleNone, State: privicore.DeviceApproved,
		ClientID: clientID, CreatedAt: now, UpdatedAt: now}
}

// A device is found only under its own profile: another profile asking
// for it, by id or by the command that requested it, gets ENOTFOUND, in
// the transaction (Queries) and outside it (Store). The bus user lookup has
// no profile and finds it.
func TestDeviceReadsAreScopedToTheirProfile(t *testing.T) {
	onBothDialects(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(q privicore.Queries) error {
			if err := q.CreateDevice(ctx, device("dev-a", "alice", "cmd-a", "device-dev-a")); err != nil {
				return err
			}
			return q.CreateDevice(ctx, device("dev-b", "bob", "cmd-b", "device-dev-b"))
		}); err != nil {
			t.Fatal(err)
		}
		type reads struct {
			find      func(profileID, id string) (*privicore.Device, error)
			byRequest func(profileID, commandID string) (*privicore.Device, error)
		}
		// check reports the first broken rule (it may run on the store's
		// writer goroutine, where t.Fatal must not be called).
		check := func(r reads) error {
			if d, err := r.find("alice", "dev-a"); err != nil || d.ID != "dev-a" || d.ProfileID != "alice" {
				return fmt.Errorf("own device: %+v, %v", d, err)
			}
			if d, err := r.find("bob", "dev-a"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				return fmt.Errorf("another profile's device: %+v, %v; want ENOTFOUND", d, err)
			}
			if d, err := r.byRequest("alice", "cmd-a"); err != nil || d.ID != "dev-a" {
				return fmt.Errorf("own request: %+v, %v", d, err)
			}
			if d, err := r.byRequest("bob", "cmd-a"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
				return fmt.Errorf("another profile's request: %+v, %v; want ENOTFOUND", d, err)
			}
			return nil
		}
		t.Run("store", func(t *testing.T) {
			if err := check(reads{
				find:      func(p, id string) (*privicore.Device, error) { return db.FindDevice(ctx, p, id) },
				byRequest: func(p, c string) (*privicore.Device, error) { return db.FindDeviceByRequest(ctx, p, c) },
			}); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("transaction", func(t *testing.T) {
			var broken error
			db.Write(ctx, func(q privicore.Queries) error {
				broken = check(reads{
					find:      func(p, id string) (*privicore.Device, error) { return q.FindDevice(ctx, p, id) },
					byRequest: func(p, c string) (*privicore.Device, error) { return q.FindDeviceByRequest(ctx, p, c) },
				})
				return nil
			})
			if broken != nil {
				t.Fatal(broken)
			}
		})
		if d, err := db.FindDeviceByClientID(ctx, "device-dev-b"); err != nil || d.ID != "dev-b" || d.ProfileID != "bob" {
			t.Fatalf("by bus user: %+v, %v", d, err)
		}
	})
}
