package fanout

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

// Devices returns the profile's storage devices.
//
// The list is cached per profile until a device change is committed on
// any replica (DeviceChanges) or for deviceCacheTTL at most. Without
// DeviceChanges, or while it says not to, nothing is cached: every call
// reads the store.
func (s *Service) Devices(ctx context.Context, profileID string) ([]*privicore.Device, error) {
	if s.changes == nil {
		return s.store.ListDevices(ctx, profileID, privicore.RoleStorage)
	}
	gen, ok := s.changes.DeviceGeneration()
	if !ok {
		return s.store.ListDevices(ctx, profileID, privicore.RoleStorage)
	}
	s.devMu.Lock()
	e, ok := s.devCache[profileID]
	s.devMu.Unlock()
	if ok && e.gen == gen && time.Since(e.at) < deviceCacheTTL {
		return e.devices, nil
	}
	at := time.Now()
	ds, err := s.store.ListDevices(ctx, profileID, privicore.RoleStorage)
	if err != nil {
		return nil, err
	}
	s.devMu.Lock()
	if len(s.devCache) > 10000 {
		s.devCache = map[string]devEntry{}
	}
	s.devCache[profileID] = devEntry{gen: gen, at: at, devices: ds}
	s.devMu.Unlock()
	return ds, nil
}

// deviceCacheTTL bounds the life of a cached device list.
const deviceCacheTTL = 5 * time.Second

type devEntry struct {
	gen     uint64 // the DeviceGeneration it was read in
	at      time.Time
	devices []*privicore.Device
}

// Stats counts a device's blobs and bytes.
func (s *Service) Stats(ctx context.Context, deviceID string) (int, int64, error) {
	return s.store.DeviceBlobStats(ctx, deviceID)
}

// Holders lists the profile's online storage devices holding a blob.
func (s *Service) Holders(ctx context.Context, profileID, blobID string) ([]string, error) {
	return s.holders(ctx, profileID, blobID, "")
}

// holders lists the online storage devices of the profile that hold the
// blob, except one.
func (s *Service) holders(ctx context.Context, profileID, blobID, except string) ([]string, error) {
	ids, err := s.store.BlobHolders(ctx, blobID)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, id := range ids {
		held[id] = true
	}
	return s.onlineDevices(ctx, profileID, func(id string) bool { return held[id] && id != except })
}

// onlineDevices lists the ids of the profile's online storage devices that
// keep accepts.
func (s *Service) onlineDevices(ctx context.Context, profileID string, keep func(id string) bool) ([]string, error) {
	devs, err := s.Devices(ctx, profileID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range devs {
		if keep(d.ID) && s.bus.Online(d.ClientID) {
			out = append(out, d.ID)
		}
	}
	return out, nil
}

// PeerDeviceChanges returns the DeviceChanges of the device changes that
// peers hear of: this engine's and, in cluster mode, every replica's (the
// store notes them, coherence.Devices), cached only while peers are Valid.
func PeerDeviceChanges(peers *coherence.Peers) DeviceChanges {
	c := &peerDeviceChanges{peers: peers}
	peers.Handle(coherence.Devices, func(string) { c.gen.Add(1) })
	peers.OnFlush(func() { c.gen.Add(1) })
	return c
}

type peerDeviceChanges struct {
	peers *coherence.Peers
	gen   atomic.Uint64
}

func (c *peerDeviceChanges) DeviceGeneration() (uint64, bool) {
	gen := c.gen.Load()
	return gen, c.peers.Valid()
}
