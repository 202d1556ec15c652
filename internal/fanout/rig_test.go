package fanout_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/layer2"
	"github.com/privicore/privicore/internal/protocol"
	"github.com/privicore/privicore/internal/sqlstore"
)

// rig is the engine's side of the storage devices, assembled from the real
// parts: a SQLite store, the device service, the embedded bus, the layer-2
// sealer and validator, and fanout itself. Storage devices are the real
// daemon (internal/daemon/storagedevice) run in-process over the bus.
type rig struct {
	t       *testing.T
	ctx     context.Context
	store   *sqlstore.DB
	devices *device.Service
	bus     *bus.Bus
	sealer  *layer2.Sealer
	valid   *layer2.Validator
	fan     *fanout.Service
	profile string
	n       int
}

func logger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("PRIVICORE_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newRig starts the parts; the outbox delivery runs (fan.Start).
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, peers := commandtest.OpenWithPeers(t)
	log := logger()
	cmds := command.New(store, commandtest.Nowhere{}, command.Options{Logger: log})
	enginePriv, _ := keys.Generate()
	b, err := bus.Start(bus.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: log}, device.NewAuthenticator(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	devs := device.New(store, cmds, b, keys.SignedPublic(enginePriv))
	master := make([]byte, 32)
	rand.Read(master)
	sealer := layer2.New(master)
	valid := layer2.NewValidator(sealer, store)
	fan := fanout.New(store, b, fanout.PeerDeviceChanges(peers), valid, log)
	fan.Handle(cmds)
	if err := cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cmds.Stop)
	if err := fan.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fan.Stop)
	r := &rig{t: t, ctx: ctx, store: store, devices: devs, bus: b, sealer: sealer, valid: valid, fan: fan, profile: "profile-a"}
	r.createProfile(r.profile)
	return r
}

func (r *rig) write(fn func(q privicore.Queries) error) {
	r.t.Helper()
	if err := r.store.Write(r.ctx, fn); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) createProfile(id string) {
	now := time.Now().UTC()
	r.write(func(q privicore.Queries) error {
		return q.CreateProfile(r.ctx, &privicore.Profile{ID: id, Username: id, PasswordHash: "h", CreatedAt: now, UpdatedAt: now})
	})
}

// storageDevice is a storage device of the rig's profile: enrolled,
// approved, its key registered, the storage role. It is not connected:
// start does that.
type storageDevice struct {
	r   *rig
	ID  string
	dir string
	d   *storagedevice.Device
}

// addDevice enrolls a device of profileID with role (an active device) and
// (the store notes the change for the device lists).
func (r *rig) addDevice(profileID, role string) *storageDevice {
	r.t.Helper()
	r.n++
	id := "00000000-0000-4000-8000-" + leftPad(strconv.Itoa(r.n), 12)
	priv, _ := keys.Generate()
	now := time.Now().UTC()
	r.write(func(q privicore.Queries) error {
		return q.CreateDevice(r.ctx, &privicore.Device{ID: id, ProfileID: profileID, RequestCommandID: "request-" + id, Name: id, DisplayName: id,
			Tags: []string{}, Meta: map[string]any{}, Role: role, State: privicore.DeviceApproved, PublicKey: keys.SignedPublic(priv),
			ClientID: protocol.ClientID(id), CreatedAt: now, UpdatedAt: now})
	})
	return &storageDevice{r: r, ID: id, dir: r.t.TempDir()}
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// storage adds n storage devices of the rig's profile and starts them.
func (r *rig) storage(n int) []*storageDevice {
	var out []*storageDevice
	for range n {
		d := r.addDevice(r.profile, privicore.RoleStorage)
		d.start()
		out = append(out, d)
	}
	return out
}

// start connects the device with a freshly issued bundle and waits until
// it is online and answers.
func (d *storageDevice) start() {
	t := d.r.t
	t.Helper()
	dev, err := d.r.devices.Find(d.r.ctx, d.r.profile, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.r.devices.Configuration(d.r.ctx, dev.ProfileID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := keys.Generate()
	sd, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: d.dir, Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	d.d = sd
	t.Cleanup(d.stop)
	eventually(t, "the device answers", func() bool {
		if !d.r.bus.Online(protocol.ClientID(d.ID)) {
			return false
		}
		_, err := d.r.bus.Request(d.r.ctx, d.ID, protocol.OpPing, nil, nil)
		return err == nil
	})
}

func (d *storageDevice) stop() {
	if d.d != nil {
		d.d.Close()
		d.d = nil
	}
}

// holds asks the (running) device whether it holds the blob.
func (d *storageDevice) holds(blobID string) bool {
	d.r.t.Helper()
	_, err := d.r.bus.Request(d.r.ctx, d.ID, protocol.OpHas, map[string]string{protocol.HeaderBlob: blobID}, nil)
	var de *protocol.DeviceError
	if errors.As(err, &de) && de.Code == protocol.ErrNotFound {
		return false
	} else if err != nil {
		d.r.t.Fatal(err)
	}
	return true
}

// fetch reads the blob from the device itself.
func (d *storageDevice) fetch(blobID string) []byte {
	d.r.t.Helper()
	data, err := d.r.bus.Request(d.r.ctx, d.ID, protocol.OpFetch, map[string]string{protocol.HeaderBlob: blobID}, nil)
	if err != nil {
		d.r.t.Fatal(err)
	}
	return data
}

// readChunks reads a chunked blob from the device itself and opens every
// chunk (layer 2); it fails the test on an invalid chunk.
func (d *storageDevice) readChunks(b *blob) []byte {
	d.r.t.Helper()
	var out []byte
	for seq := range b.chunks {
		c, err := d.r.fan.FetchChunk(d.r.ctx, d.ID, b.id, seq)
		if err != nil {
			d.r.t.Fatalf("chunk %d of device %s: %v", seq, d.ID, err)
		}
		p, err := d.r.sealer.OpenChunk(b.id, b.wrapped, seq, c)
		if err != nil {
			d.r.t.Fatalf("chunk %d of device %s is not valid: %v", seq, d.ID, err)
		}
		out = append(out, p...)
	}
	return out
}

// put stores data as blobID on the device directly (over the bus, as the
// engine would), bypassing fanout: a device holding a copy the engine did
// not make.
func (d *storageDevice) put(blobID string, data []byte) {
	d.r.t.Helper()
	if _, err := d.r.bus.Request(d.r.ctx, d.ID, protocol.OpStore, map[string]string{protocol.HeaderBlob: blobID}, data); err != nil {
		d.r.t.Fatal(err)
	}
}

// putChunks stores chunks as the chunked blob blobID on the device
// directly.
func (d *storageDevice) putChunks(blobID string, chunks [][]byte) {
	d.r.t.Helper()
	for seq, c := range chunks {
		h := map[string]string{protocol.HeaderBlob: blobID, protocol.HeaderSeq: strconv.Itoa(seq)}
		if seq == len(chunks)-1 {
			h[protocol.HeaderFinal] = "1"
		}
		if _, err := d.r.bus.Request(d.r.ctx, d.ID, protocol.OpChunk, h, c); err != nil {
			d.r.t.Fatal(err)
		}
	}
}

// blob is a payload sealed as the data token service seals it.
type blob struct {
	id      string
	plain   []byte
	sealed  []byte   // single blobs
	chunks  [][]byte // chunked blobs: the sealed chunks
	plains  [][]byte // chunked blobs: the chunks' plaintext
	wrapped []byte
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

var blobSeq int

func nextBlobID() string {
	blobSeq++
	return "BLOB" + leftPad(strconv.Itoa(blobSeq), 8)
}

// sealBlob seals a single-message payload.
func (r *rig) sealBlob(size int) *blob {
	r.t.Helper()
	b := &blob{id: nextBlobID(), plain: randomBytes(size)}
	var err error
	if b.sealed, b.wrapped, err = r.sealer.SealBlob(b.id, b.plain); err != nil {
		r.t.Fatal(err)
	}
	return b
}

// sealChunks seals a streamed payload of n chunks of size bytes (the last
// one shorter).
func (r *rig) sealChunks(n, size int) *blob {
	r.t.Helper()
	b := &blob{id: nextBlobID()}
	st, err := r.sealer.NewStream(b.id)
	if err != nil {
		r.t.Fatal(err)
	}
	for seq := range n {
		p := randomBytes(size)
		if seq == n-1 {
			p = p[:size/2]
		}
		c, err := st.Seal(seq, p)
		if err != nil {
			r.t.Fatal(err)
		}
		b.plains = append(b.plains, p)
		b.plain = append(b.plain, p...)
		b.chunks = append(b.chunks, c)
	}
	if b.wrapped, err = st.Wrapped(); err != nil {
		r.t.Fatal(err)
	}
	return b
}

// record writes the data token of a stored blob (what the validator reads
// the wrapped key from, and the outbox finds the blob's profile by), with
// the devices that hold it.
func (r *rig) record(b *blob, holders ...string) *privicore.DataToken {
	r.t.Helper()
	now := time.Now().UTC()
	size := int64(len(b.sealed))
	for _, c := range b.chunks {
		size += int64(len(c))
	}
	tok := &privicore.DataToken{ID: "tok-" + b.id, ProfileID: r.profile, TempToken: "tmp-" + b.id, Token: "dtk-" + b.id,
		ReservationID: "reserve-" + b.id, BlobID: b.id, Context: "test", Meta: map[string]any{}, State: privicore.TokenStored,
		Size: size, Chunks: len(b.chunks), WrappedKey: b.wrapped, CreatedAt: now, UpdatedAt: now}
	r.write(func(q privicore.Queries) error {
		if err := q.CreateDataToken(r.ctx, tok); err != nil {
			return err
		}
		if len(holders) == 0 {
			return nil
		}
		return q.AddDeviceBlob(r.ctx, b.id, size, holders...)
	})
	return tok
}

// queue adds an outbox entry for a device.
func (r *rig) queue(deviceID, blobID, op string) {
	r.write(func(q privicore.Queries) error { return q.AddOutbox(r.ctx, deviceID, blobID, op, time.Now().UTC()) })
}

// queued lists the outbox entries of a device as "op blob".
func (r *rig) queued(deviceID string) []string {
	r.t.Helper()
	entries, err := r.store.Outbox(r.ctx, deviceID, 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Op+" "+e.BlobID)
	}
	return out
}

func (r *rig) holders(blobID string) []string {
	r.t.Helper()
	ids, err := r.store.BlobHolders(r.ctx, blobID)
	if err != nil {
		r.t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func ids(ds ...*storageDevice) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

// eventually waits for cond; the deadline is only a guard against a hang.
var eventually = commandtest.Eventually
