package fanout

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/protocol"
)

// Stream sends one payload chunk by chunk to every storage device of a
// profile. Chunks go out one at a time and each waits for every device's
// answer, so memory stays at one chunk whatever the payload's size. A device
// that fails drops out (it catches up later through its outbox).
type Stream struct {
	s       *Service
	blobID  string
	seq     int
	targets []string
	Missed  []string // devices that are offline or dropped out
}

// OpenStream starts a chunked upload of blobID; no storage device at all is
// the rejection storage.no_devices.
func (s *Service) OpenStream(ctx context.Context, profileID, blobID string) (*Stream, error) {
	devs, err := s.Devices(ctx, profileID)
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, privicore.Reject(ReasonNoDevices, "the profile has no storage device")
	}
	st := &Stream{s: s, blobID: blobID}
	for _, d := range devs {
		if s.bus.Online(d.ClientID) {
			st.targets = append(st.targets, d.ID)
		} else {
			st.Missed = append(st.Missed, d.ID)
		}
	}
	return st, nil
}

// Send writes the next (sealed) chunk to every remaining device; final
// marks the last chunk, after which the devices hold the blob durably.
func (st *Stream) Send(ctx context.Context, chunk []byte, final bool) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var kept []string
	for _, id := range st.targets {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			h := map[string]string{protocol.HeaderBlob: st.blobID, protocol.HeaderSeq: strconv.Itoa(st.seq)}
			if final {
				h[protocol.HeaderFinal] = "1"
			}
			_, err := st.s.requestHeader(ctx, id, protocol.OpChunk, h, chunk)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.s.log.Warn("device chunk failed", "device", id, "blob", st.blobID, "seq", st.seq, "err", err)
				st.Missed = append(st.Missed, id)
				return
			}
			kept = append(kept, id)
		}(id)
	}
	wg.Wait()
	st.targets = kept
	st.seq++
}

// Acked lists the devices that took every chunk so far.
func (st *Stream) Acked() []string { return st.targets }

// FetchChunk reads chunk seq of a chunked blob from one device.
func (s *Service) FetchChunk(ctx context.Context, deviceID, blobID string, seq int) ([]byte, error) {
	return s.requestHeader(ctx, deviceID, protocol.OpFetchChunk,
		map[string]string{protocol.HeaderBlob: blobID, protocol.HeaderSeq: strconv.Itoa(seq)}, nil)
}

// ReadChunks reads every chunk of a chunked blob in order, passing each to
// use; a device that fails or returns an invalid chunk (valid says) is
// replaced by another holder from that chunk on.
func (s *Service) ReadChunks(ctx context.Context, profileID, blobID string, chunks int, valid func(seq int, data []byte) ([]byte, error), use func([]byte) error) error {
	holders, err := s.holders(ctx, profileID, blobID, "")
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		return privicore.Reject(ReasonReadFailed, "no storage device holds the data")
	}
	h := 0
	for seq := 0; seq < chunks; {
		if h == len(holders) {
			return privicore.Reject(ReasonReadFailed, "no storage device returned a valid copy")
		}
		data, err := s.FetchChunk(ctx, holders[h], blobID, seq)
		var plain []byte
		if err == nil {
			plain, err = valid(seq, data)
		}
		if err != nil {
			s.log.Warn("device chunk read failed", "device", holders[h], "blob", blobID, "seq", seq, "err", err)
			h++
			continue
		}
		if err := use(plain); err != nil {
			return err
		}
		seq++
	}
	return nil
}

// copyChunks copies a chunked blob from peer to device d, chunk by chunk.
func (s *Service) copyChunks(ctx context.Context, peer, target, blobID string, chunks int) error {
	if chunks <= 0 {
		return errors.New("not a chunked blob")
	}
	st := &Stream{s: s, blobID: blobID, targets: []string{target}}
	for seq := range chunks {
		data, err := s.FetchChunk(ctx, peer, blobID, seq)
		if err != nil {
			return err
		}
		if !s.valid.ValidChunk(blobID, seq, data) {
			return errors.New("invalid chunk")
		}
		st.Send(ctx, data, seq == chunks-1)
		if len(st.targets) == 0 {
			return errors.New("target failed")
		}
	}
	return nil
}
