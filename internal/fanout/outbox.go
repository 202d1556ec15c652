package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/lease"
	"github.com/privicore/privicore/internal/protocol"
)

// Outbox operations: what is queued for a device that missed it.
const (
	OpStore  = "store"  // copy the blob to the device from a peer holding it
	OpDelete = "delete" // delete the blob from the device
)

// Start runs the outbox delivery: on a device's hello, and every few
// seconds for every device with queued work; only while deliveries, the
// outbox's lease, is held (one replica at a time delivers; nil: always).
func (s *Service) Start(deliveries *lease.Lease) error {
	unsubscribe, err := s.bus.OnHello(s.Kick)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer unsubscribe()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case id := <-s.kick:
				deliveries.Do(func() { s.deliverAsync(id) })
			case <-t.C:
				deliveries.Do(s.deliverAll)
			}
		}
	}()
	return nil
}

// Stop ends the outbox delivery.
func (s *Service) Stop() {
	close(s.stop)
	s.wg.Wait()
}

// Kick asks for the outbox of a device to be delivered now.
func (s *Service) Kick(deviceID string) {
	select {
	case s.kick <- deviceID:
	default:
	}
}

// KickAll asks for the outboxes of devices to be delivered now.
func (s *Service) KickAll(deviceIDs []string) {
	for _, id := range deviceIDs {
		s.Kick(id)
	}
}

func (s *Service) deliverAll() {
	ids, err := s.store.OutboxDevices(context.Background())
	if err != nil {
		s.log.Warn("outbox scan failed", "err", err)
		return
	}
	for _, id := range ids {
		s.deliverAsync(id)
	}
}

func (s *Service) deliverAsync(deviceID string) {
	if _, running := s.busy.LoadOrStore(deviceID, struct{}{}); running {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.busy.Delete(deviceID)
		s.deliver(context.Background(), deviceID)
	}()
}

// deliver sends a device what is queued for it, while it is online.
func (s *Service) deliver(ctx context.Context, deviceID string) {
	// The outbox is addressed to a device, not to a profile: the device is
	// looked up by its bus user (protocol.ClientID), which every storage
	// device has (a role needs approval, and approval gives the bus user).
	d, err := s.store.FindDeviceByClientID(ctx, protocol.ClientID(deviceID))
	if err != nil {
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			s.dropOutbox(ctx, deviceID) // the device is gone
		}
		return
	}
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		if !s.bus.Online(d.ClientID) {
			return
		}
		entries, err := s.store.Outbox(ctx, deviceID, 64)
		if err != nil || len(entries) == 0 {
			return
		}
		progress := false
		for _, e := range entries {
			if s.deliverOne(ctx, d, e) {
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

// dropOutbox removes everything queued for a device that no longer exists.
func (s *Service) dropOutbox(ctx context.Context, deviceID string) {
	entries, _ := s.store.Outbox(ctx, deviceID, 10000)
	s.store.Write(ctx, func(q privicore.Queries) error {
		for _, e := range entries {
			if err := q.RemoveOutbox(ctx, e.DeviceID, e.BlobID, e.Op); err != nil {
				return err
			}
		}
		return nil
	})
}

// deliverOne performs one queued operation; it reports success.
func (s *Service) deliverOne(ctx context.Context, d *privicore.Device, e privicore.OutboxEntry) bool {
	switch e.Op {
	case OpDelete:
		if _, err := s.request(ctx, d.ID, protocol.OpDelete, e.BlobID, nil); err != nil {
			return false
		}
		return s.store.Write(ctx, func(q privicore.Queries) error {
			if err := q.RemoveDeviceBlob(ctx, d.ID, e.BlobID); err != nil {
				return err
			}
			return q.RemoveOutbox(ctx, d.ID, e.BlobID, OpDelete)
		}) == nil
	case OpStore:
		t, err := s.store.FindDataTokenByBlob(ctx, e.BlobID)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && t.State != privicore.TokenStored) {
			// Deleted meanwhile: nothing to copy.
			return s.store.Write(ctx, func(q privicore.Queries) error { return q.RemoveOutbox(ctx, d.ID, e.BlobID, OpStore) }) == nil
		} else if err != nil {
			return false
		}
		if err := s.copyTo(ctx, d, t); err != nil {
			return false
		}
		return s.store.Write(ctx, func(q privicore.Queries) error { return q.RemoveOutbox(ctx, d.ID, e.BlobID, OpStore) }) == nil
	}
	return false
}

// copyTimeout bounds one single-message copy to a catching-up device.
const copyTimeout = 5 * time.Second

// copyTo copies a blob from a peer holding a valid copy to device d and
// records it (chunk by chunk for a streamed blob: copyChunks).
func (s *Service) copyTo(ctx context.Context, d *privicore.Device, t *privicore.DataToken) error {
	peers, err := s.holders(ctx, t.ProfileID, t.BlobID, d.ID)
	if err != nil {
		return err
	}
	for _, p := range peers {
		if t.Chunks > 0 {
			if err := s.copyChunks(ctx, p, d.ID, t.BlobID, t.Chunks); err != nil {
				continue
			}
			return s.store.Write(ctx, func(q privicore.Queries) error { return q.AddDeviceBlob(ctx, t.BlobID, t.Size, d.ID) })
		}
		data, err := s.request(ctx, p, protocol.OpFetch, t.BlobID, nil)
		if err != nil || !s.valid.ValidBlob(t.BlobID, data) {
			continue
		}
		// A single-message copy takes milliseconds; a device that died with
		// the request in hand must not hold its delivery round for the full
		// request timeout.
		sctx, cancel := context.WithTimeout(ctx, copyTimeout)
		_, err = s.request(sctx, d.ID, protocol.OpStore, t.BlobID, data)
		cancel()
		if err != nil {
			return err
		}
		return s.store.Write(ctx, func(q privicore.Queries) error { return q.AddDeviceBlob(ctx, t.BlobID, t.Size, d.ID) })
	}
	return errors.New("no peer has a valid copy")
}
