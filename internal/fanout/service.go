// Package fanout is the engine's side of the storage devices: it fans a
// blob out to every storage device of a profile and reads it back from the
// first device with a valid copy (fanout.go, chunks.go for streamed
// payloads), delivers what a device missed while offline (a durable
// per-device outbox: stores are copied from a peer that holds the blob, so
// the engine never keeps payloads; outbox.go), and synchronizes a device
// with its peers (sync.go). It reaches the devices through a Bus
// (internal/bus) speaking internal/protocol.
package fanout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/protocol"
)

// Rejection reasons of this package.
const (
	ReasonNoDevices     = "storage.no_devices"
	ReasonWriteFailed   = "storage.write_failed"
	ReasonReadFailed    = "storage.read_failed"
	ReasonDeviceOffline = "storage.device_offline"
)

// Bus carries the engine's requests to its devices (internal/bus
// implements it).
type Bus interface {
	// Request sends op (a protocol operation) to the device deviceID with
	// header and body and waits for the reply's body until ctx ends; a
	// device's failure reply is a *protocol.DeviceError.
	Request(ctx context.Context, deviceID, op string, header map[string]string, body []byte) ([]byte, error)
	// OnHello calls hello with the device id of every device's hello
	// (protocol.OpHello) until stop is called.
	OnHello(hello func(deviceID string)) (stop func(), err error)
	// Online reports whether a device's bus user is connected.
	Online(clientID string) bool
}

// DeviceChanges tells the service when its cached device lists are stale
// (PeerDeviceChanges implements it).
type DeviceChanges interface {
	// DeviceGeneration grows once any change to a device is committed; a
	// list is cached only while ok.
	DeviceGeneration() (gen uint64, ok bool)
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
	bus     Bus
	changes DeviceChanges
	log     *slog.Logger
	timeout time.Duration
	valid   Validator

	devMu    sync.Mutex
	devCache map[string]devEntry

	kick chan string
	stop chan struct{}
	wg   sync.WaitGroup
	busy sync.Map // device id → struct{}: outbox being delivered
}

// New returns the service; Start runs its outbox delivery. changes says
// when the devices' cached lists are stale (PeerDeviceChanges); nil caches
// no list. valid
// checks every copy read from a device before it is served or copied.
func New(store privicore.Store, b Bus, changes DeviceChanges, valid Validator, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, bus: b, changes: changes, log: logger, timeout: 15 * time.Second,
		valid: valid, devCache: map[string]devEntry{}, kick: make(chan string, 1024), stop: make(chan struct{})}
}

// request sends op about blobID to a device and waits for its answer.
func (s *Service) request(ctx context.Context, deviceID, op, blobID string, data []byte) ([]byte, error) {
	return s.requestHeader(ctx, deviceID, op, map[string]string{protocol.HeaderBlob: blobID}, data)
}

// requestHeader sends op with header to a device and waits for its answer
// (for the request timeout at most).
func (s *Service) requestHeader(ctx context.Context, deviceID, op string, header map[string]string, data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.bus.Request(ctx, deviceID, op, header, data)
}
