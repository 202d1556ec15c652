package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/fanout"
)

// TestDeviceListHearsOfChangesItDoesNotMake: a service whose device lists
// follow the peers (PeerDeviceChanges) lists a storage device removed by a
// write it does not make (as another replica's, whose commit is published
// to the peers) no more at the very next call, though it listed, and
// cached, it a moment before.
func TestDeviceListHearsOfChangesItDoesNotMake(t *testing.T) {
	ctx := context.Background()
	store, peers := commandtest.OpenWithPeers(t)
	fan := fanout.New(store, nil, fanout.PeerDeviceChanges(peers), nil, nil)
	now := time.Now().UTC()
	write := func(fn func(q privicore.Queries) error) { t.Helper(); commandtest.Write(t, store, fn) }
	write(func(q privicore.Queries) error {
		if err := q.CreateProfile(ctx, &privicore.Profile{ID: "p1", Username: "devices", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for _, id := range []string{"d1", "d2"} {
			d := &privicore.Device{ID: id, ProfileID: "p1", RequestCommandID: "cmd-" + id, Name: id, Role: privicore.RoleStorage, State: privicore.DeviceApproved,
				ClientID: "device-" + id, CreatedAt: now, UpdatedAt: now}
			if err := q.CreateDevice(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	ids := func() []string {
		t.Helper()
		ds, err := fan.Devices(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	if got := ids(); len(got) != 2 {
		t.Fatalf("listed %v, want d1 and d2", got)
	}
	write(func(q privicore.Queries) error { return q.DeleteDevice(ctx, "d2") })
	if got := ids(); len(got) != 1 || got[0] != "d1" {
		t.Fatalf("after another replica's removal, listed %v, want d1", got)
	}
}
