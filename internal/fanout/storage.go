// Package fanout is the engine's side of the storage devices: it fans a
// blob out to every storage device of a profile, reads a blob back from the
// first device with a valid copy, delivers what a device missed while
// offline (a durable per-device outbox: stores are copied from a peer that
// holds the blob, so the engine never keeps payloads), and synchronizes a
// device with its peers.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/protocol"
)

// Rejection reasons of this package.
const (
	ReasonNoDevices     = "storage.no_devices"
	ReasonWriteFailed   = "storage.write_failed"
	ReasonReadFailed    = "storage.read_failed"
	ReasonDeviceOffline = "storage.device_offline"
)

// Outbox operations.
const (
	OpStore  = "store"
	OpDelete = "delete"
)

// Online reports whether a device's bus user is connected.
type Online interface {
	Online(clientID string) bool
}

// Validator authenticates what a device returns (layer 2, see
// internal/layer2), so a corrupted copy is never served or copied to
// another device.
type Validator interface {
	// ValidBlob reports whether blob is an intact copy of blobID.
	ValidBlob(blobID string, blob []byte) bool
	// ValidChunk reports whether chunk is an intact copy of chunk seq of
	// the chunked blob blobID.
	ValidChunk(blobID string, seq int, chunk []byte) bool
}

// Service talks to storage devices over the bus.
type Service struct {
	store   privicore.Store
	nc      *nats.Conn
	prefix  string
	online  Online
	log     *slog.Logger
	timeout time.Duration
	valid   Validator

	devMu    sync.Mutex
	devGen   uint64
	devCache map[string]devEntry

	kick chan string
	stop chan struct{}
	wg   sync.WaitGroup
	busy sync.Map // device id → struct{}: outbox being delivered
}

// New returns the service; Start runs its outbox delivery. valid checks
// every copy read from a device before it is served or copied.
func New(store privicore.Store, b *bus.Bus, valid Validator, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, nc: b.Conn(), prefix: b.Prefix(), online: b, log: logger, timeout: 15 * time.Second,
		valid: valid, devCache: map[string]devEntry{}, kick: make(chan string, 1024), stop: make(chan struct{})}
}

func (s *Service) subject(deviceID, op string) string {
	return protocol.To(protocol.DeviceSubject(s.prefix, deviceID), op)
}

// request sends op about blobID to a device and waits for its answer.
func (s *Service) request(ctx context.Context, deviceID, op, blobID string, data []byte) ([]byte, error) {
	m := nats.NewMsg(s.subject(deviceID, op))
	m.Header.Set(protocol.HeaderBlob, blobID)
	m.Data = data
	return s.requestMsg(ctx, m)
}

// requestMsg sends a prepared request to a device and waits for its answer.
func (s *Service) requestMsg(ctx context.Context, m *nats.Msg) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, err := s.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, err
	}
	if e := r.Header.Get(protocol.HeaderError); e != "" {
		return nil, &deviceError{code: e}
	}
	return r.Data, nil
}

type deviceError struct{ code string }

func (e *deviceError) Error() string { return "device: " + e.code }

// Devices returns the profile's storage devices.
//
// The list is cached per profile until a device change is committed
// (InvalidateDevices) or for deviceCacheTTL at most.
func (s *Service) Devices(ctx context.Context, profileID string) ([]*privicore.Device, error) {
	s.devMu.Lock()
	gen := s.devGen
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
	gen     uint64
	at      time.Time
	devices []*privicore.Device
}

// InvalidateDevices drops the cached device lists; call it once a change
// to any device has been committed.
func (s *Service) InvalidateDevices() {
	s.devMu.Lock()
	s.devGen++
	s.devCache = map[string]devEntry{}
	s.devMu.Unlock()
}

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
		if !s.online.Online(d.ClientID) {
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
		var de *deviceError
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.As(err, &de) && de.code == protocol.ErrNotFound:
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
		if keep(d.ID) && s.online.Online(d.ClientID) {
			out = append(out, d.ID)
		}
	}
	return out, nil
}

// Start runs the outbox delivery: on a device's hello, and every few
// seconds for every device with queued work.
func (s *Service) Start() error {
	sub, err := s.nc.Subscribe(protocol.FromAny(s.prefix, protocol.OpHello), func(m *nats.Msg) {
		select {
		case s.kick <- protocol.SubjectDevice(s.prefix, m.Subject):
		default:
		}
	})
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer sub.Unsubscribe()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case id := <-s.kick:
				s.deliverAsync(id)
			case <-t.C:
				s.deliverAll()
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

func (s *Service) deliverAll() {
	ids, err := s.outboxDevices(context.Background())
	if err != nil {
		s.log.Warn("outbox scan failed", "err", err)
		return
	}
	for _, id := range ids {
		s.deliverAsync(id)
	}
}

func (s *Service) outboxDevices(ctx context.Context) ([]string, error) {
	return s.store.OutboxDevices(ctx)
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
		if !s.online.Online(d.ClientID) {
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

// copyTo copies a blob from a peer holding it to device d and records it.
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

// SyncResult is the ack body of a synchronization.
type SyncResult struct {
	Copied int `json:"copied"`
	Failed int `json:"failed"`
}

// Sync copies to device d every stored blob of its profile that it lacks,
// from the profile's other storage devices.
func (s *Service) Sync(ctx context.Context, d *privicore.Device) (SyncResult, error) {
	var res SyncResult
	if !s.online.Online(d.ClientID) {
		return res, privicore.Reject(ReasonDeviceOffline, "the device is offline")
	}
	raw, err := s.request(ctx, d.ID, protocol.OpList, "", nil)
	if err != nil {
		return res, err
	}
	var have []string
	if err := json.Unmarshal(raw, &have); err != nil {
		return res, err
	}
	held := map[string]bool{}
	for _, id := range have {
		held[id] = true
	}
	for page := 1; ; page++ {
		tokens, _, err := s.store.ListDataTokens(ctx, d.ProfileID, privicore.DataTokenFilter{Page: page, PerPage: 500})
		if err != nil {
			return res, err
		}
		for _, t := range tokens {
			if held[t.BlobID] {
				s.store.Write(ctx, func(q privicore.Queries) error { return q.AddDeviceBlob(ctx, t.BlobID, t.Size, d.ID) })
				continue
			}
			if err := s.copyTo(ctx, d, t); err != nil {
				res.Failed++
				continue
			}
			res.Copied++
		}
		if len(tokens) < 500 {
			return res, nil
		}
	}
}

// KickAll asks for the outboxes of devices to be delivered now.
func (s *Service) KickAll(deviceIDs []string) {
	for _, id := range deviceIDs {
		s.Kick(id)
	}
}

// Stats counts a device's blobs and bytes.
func (s *Service) Stats(ctx context.Context, deviceID string) (int, int64, error) {
	return s.store.DeviceBlobStats(ctx, deviceID)
}

// CmdSync is the synchronize-device command.
const CmdSync = "storage.sync"

type syncPayload struct {
	DeviceID string `json:"deviceId"`
}

// SyncCommand is the Prepare step of CmdSync: the device must be one of
// the profile's storage devices and online.
func (s *Service) SyncCommand(ctx context.Context, c *privicore.Command) (any, error) {
	var p syncPayload
	if err := json.Unmarshal(c.Payload, &p); err != nil {
		return nil, privicore.Reject("command.bad_payload", "bad payload")
	}
	d, err := s.store.FindDevice(ctx, c.ProfileID, p.DeviceID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, privicore.Reject("device.not_found", "device not found")
	} else if err != nil {
		return nil, err
	}
	if d.Role != privicore.RoleStorage {
		return nil, privicore.Reject("device.role_not_held", "not a storage device")
	}
	res, err := s.Sync(ctx, d)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(res)
	return string(b), nil
}

// SyncPayload builds the CmdSync payload.
func SyncPayload(deviceID string) any { return syncPayload{DeviceID: deviceID} }

// Handle registers the storage commands with the processor.
func (s *Service) Handle(cmds *command.Processor) {
	cmds.HandleSteps(CmdSync, command.Steps{
		Prepare: s.SyncCommand,
		Apply: func(_ context.Context, _ privicore.Queries, _ *privicore.Command, prepared any) (command.Result, error) {
			return command.Result{Body: prepared.(string)}, nil
		},
	})
}
