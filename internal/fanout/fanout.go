package fanout

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/protocol"
)

// Push sends blob to every storage device of the profile at once and
// returns those that wrote it durably, and those that did not (offline or
// failed). No storage device at all is the rejection storage.no_devices.
func (s *Service) Push(ctx context.Context, profileID, blobID string, blob []byte) (acked, missed []string, err error) {
	devs, err := s.Devices(ctx, profileID)
	if err != nil {
		return nil, nil, err
	}
	if len(devs) == 0 {
		return nil, nil, privicore.Reject(ReasonNoDevices, "the profile has no storage device")
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, d := range devs {
		if !s.bus.Online(d.ClientID) {
			missed = append(missed, d.ID)
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			_, err := s.request(ctx, id, protocol.OpStore, blobID, blob)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("device store failed", "device", id, "blob", blobID, "err", err)
				missed = append(missed, id)
				return
			}
			acked = append(acked, id)
		}(d.ID)
	}
	wg.Wait()
	return acked, missed, nil
}

// hedgeAfter is how long Fetch waits for the first device it asks before
// asking the others too.
const hedgeAfter = 50 * time.Millisecond

// Fetch reads a blob from the profile's online storage devices: the first
// valid answer wins; a missing or corrupted copy on one device does not
// fail the read. It asks one device (chosen at random) first, and the
// others when that one fails or is slow, so a healthy read costs one device
// read rather than one per device.
//
// It does not look up which devices hold the blob: every store reaches
// every device (the outbox catches up the ones that were away), so any
// device almost always has it, and one that does not answers not_found at
// once. That saves a database read on every retrieval.
func (s *Service) Fetch(ctx context.Context, profileID, blobID string, valid func([]byte) bool) ([]byte, error) {
	candidates, err := s.onlineDevices(ctx, profileID, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	if len(candidates) == 0 {
		return nil, privicore.Reject(ReasonReadFailed, "no storage device of the profile is online")
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		data []byte
		err  error
	}
	answers := make(chan answer, len(candidates))
	ask := func(id string) {
		data, err := s.request(ctx, id, protocol.OpFetch, blobID, nil)
		if err == nil && !valid(data) {
			err = errors.New("invalid copy")
		}
		var de *protocol.DeviceError
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.As(err, &de) && de.Code == protocol.ErrNotFound:
			s.log.Debug("device does not hold the blob (yet)", "device", id, "blob", blobID)
		default:
			s.log.Warn("device fetch failed", "device", id, "blob", blobID, "err", err)
		}
		answers <- answer{data, err}
	}
	go ask(candidates[0])
	asked, got := 1, 0
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	for got < len(candidates) {
		select {
		case a := <-answers:
			got++
			if a.err == nil {
				return a.data, nil
			}
		case <-hedge.C:
		}
		for ; asked < len(candidates); asked++ { // a failure or a slow first device: ask the rest
			go ask(candidates[asked])
		}
	}
	return nil, privicore.Reject(ReasonReadFailed, "no storage device returned a valid copy")
}
