// Package storagedevice is the storage device daemon: it connects to the
// engine's bus with its configuration bundle, and stores, returns, lists and
// deletes the profile's blobs under a directory, each sealed under the
// device's own at-rest key (layer 3) and written atomically (temp file,
// fsync, rename). The engine never holds the at-rest key; the device never
// holds the engine's layer-2 keys.
package storagedevice

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/groupcommit"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// ReadBundle reads a bundle file.
func ReadBundle(path string) (*privicore.Bundle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out privicore.Bundle
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	if out.DeviceIdentifier == "" || out.ClientID == "" || out.ClientSecret == "" || out.BusURL == "" || out.BusSubjectPrefix == "" {
		return nil, fmt.Errorf("bundle %s: incomplete", path)
	}
	return &out, nil
}

// Config configures a Device.
type Config struct {
	Bundle *privicore.Bundle
	Key    *ecdh.PrivateKey // the device's own key (its public half is registered)
	Dir    string           // where blobs live; the at-rest key is created here
	Logger *slog.Logger
}

// Device is a running storage device.
type Device struct {
	cfg   Config
	log   *slog.Logger
	aead  cipher.AEAD
	blobs string // chunked blobs (and single-file blobs of earlier versions)
	packs *packs // every other blob
	nc    *nats.Conn
	sub   *nats.Subscription

	writes chan *storeReq // group-committed blob writes
	ups    uploads        // chunked blobs being received
	stop   chan struct{}
	done   chan struct{}
}

// storeReq is one blob write or removal waiting for its batch's sync.
type storeReq struct {
	change
	err chan error
}

// maxBatch bounds the blobs made durable by one sync.
const maxBatch = 128

// commitLinger is how long a batch waits for more blobs under load (see
// groupcommit.RunLinger): each commit creates a pack file and syncs the file
// system, which costs far more than a blob.
const commitLinger = 3 * time.Millisecond

// validBlobID reports whether id looks like a blob id (ULID-ish, 1 to 64 of
// [0-9A-Za-z_-]): nothing that could be a path. A loop, not a regexp: it
// runs for every message.
func validBlobID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Start opens the directory (creating the at-rest key on first start),
// connects to the bus (reconnecting by itself forever) and serves.
func Start(cfg Config) (*Device, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "blobs"), 0o700); err != nil {
		return nil, err
	}
	key, err := keys.LoadOrCreateSecretFile(filepath.Join(cfg.Dir, "at-rest.key"), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	pk, err := openPacks(filepath.Join(cfg.Dir, "packs"), aead, cfg.Logger)
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, log: cfg.Logger, aead: aead, blobs: filepath.Join(cfg.Dir, "blobs"), packs: pk,
		writes: make(chan *storeReq, 4*maxBatch), stop: make(chan struct{}), done: make(chan struct{}),
		ups: uploads{m: map[string]*upload{}}}
	go d.writer()
	b := cfg.Bundle
	nc, err := bus.Dial(b, "privicore-storage", d.log, d.hello)
	if err != nil {
		return nil, err
	}
	d.nc = nc
	// Each request is handled on its own goroutine so that stores arriving
	// together are written together (one sync for the batch).
	d.sub, err = nc.Subscribe(protocol.ToAll(b.BusSubjectPrefix), func(m *nats.Msg) { go d.handle(m) })
	if err != nil {
		nc.Close()
		return nil, err
	}
	d.sub.SetPendingLimits(-1, 512<<20)
	if nc.IsConnected() {
		d.hello(nc)
		// The server has the subscription once the flush returns: a store
		// sent to a device that Start has returned finds a responder.
		nc.FlushTimeout(5 * time.Second)
	}
	return d, nil
}

// hello tells the engine the device is online (so it sends what was
// missed). It uses the connection it is given: the handlers that call it
// may run before Start has stored d.nc.
func (d *Device) hello(nc *nats.Conn) {
	nc.Publish(protocol.From(d.cfg.Bundle.BusSubjectPrefix, protocol.OpHello), nil)
}

// Close disconnects.
func (d *Device) Close() {
	if d.nc != nil {
		d.nc.Drain()
		for i := 0; i < 100 && !d.nc.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		d.nc.Close()
	}
	d.stopWriter()
}

func (d *Device) stopWriter() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}

// Kill drops the connection at once, without draining (tests of failures).
func (d *Device) Kill() {
	d.nc.Close()
	d.stopWriter()
}

func (d *Device) path(id string) string { return filepath.Join(d.blobs, id) }

func (d *Device) handle(m *nats.Msg) {
	op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	id := m.Header.Get(protocol.HeaderBlob)
	if op != protocol.OpList && op != protocol.OpPing && !validBlobID(id) {
		d.fail(m, "bad_blob_id")
		return
	}
	switch op {
	case protocol.OpPing:
		m.Respond(nil)
		return
	case protocol.OpStore:
		if err := d.store(id, m.Data); err != nil {
			d.log.Error("store failed", "blob", id, "err", err)
			d.fail(m, "write_failed")
			return
		}
		m.Respond(nil)
	case protocol.OpFetch:
		data, err := d.fetch(id)
		if errors.Is(err, os.ErrNotExist) {
			d.fail(m, protocol.ErrNotFound)
			return
		} else if err != nil {
			d.log.Error("fetch failed", "blob", id, "err", err)
			d.fail(m, "read_failed")
			return
		}
		m.Respond(data)
	case protocol.OpHas:
		_, err1 := os.Stat(d.path(id))
		_, err2 := os.Stat(d.path(id) + chunkedSuffix)
		if err1 != nil && err2 != nil && !d.packs.has(id) {
			d.fail(m, protocol.ErrNotFound)
			return
		}
		m.Respond(nil)
	case protocol.OpDelete:
		if err := d.submit(change{id: id, del: true}); err != nil {
			d.log.Error("delete failed", "blob", id, "err", err)
			d.fail(m, "delete_failed")
			return
		}
		m.Respond(nil)
	case protocol.OpChunk:
		d.handleChunk(m, id)
	case protocol.OpFetchChunk:
		d.handleFetchChunk(m, id)
	case protocol.OpList:
		ids, err := d.List()
		if err != nil {
			d.fail(m, "list_failed")
			return
		}
		b, _ := json.Marshal(ids)
		m.Respond(b)
	default:
		d.fail(m, "unknown_op")
	}
}

func (d *Device) fail(m *nats.Msg, code string) {
	r := nats.NewMsg(m.Reply)
	r.Header.Set(protocol.HeaderError, code)
	m.RespondMsg(r)
}

// store seals data under the at-rest key and returns once it is durable.
func (d *Device) store(id string, data []byte) error {
	return d.submit(change{id: id, data: data})
}

// submit queues a change for the writer and waits until it is durable.
func (d *Device) submit(c change) error {
	r := &storeReq{change: c, err: make(chan error, 1)}
	select {
	case d.writes <- r:
	case <-d.stop:
		return errors.New("device stopping")
	}
	return <-r.err
}

// writer group-commits blob writes and removals: a batch's blobs go into
// one pack file (temp file, rename), made durable by one sync before any of
// them is answered.
func (d *Device) writer() {
	defer close(d.done)
	groupcommit.RunLinger(d.writes, d.stop, maxBatch, commitLinger, d.commit)
}

func (d *Device) commit(batch []*storeReq) {
	changes := make([]change, len(batch))
	removed := false
	var err error
	for i, r := range batch {
		changes[i] = r.change
		if !r.del {
			continue
		}
		// A blob stored as its own file (chunked, or by an earlier version).
		for _, p := range []string{d.path(r.id), d.path(r.id) + chunkedSuffix} {
			if e := os.Remove(p); e == nil {
				removed = true
			} else if !errors.Is(e, os.ErrNotExist) && err == nil {
				err = e
			}
		}
	}
	if err == nil {
		err = d.packs.commit(changes)
	}
	if err == nil && removed {
		err = syncFS(d.blobs)
	}
	for _, r := range batch {
		r.err <- err
	}
}

// fetch reads and opens a blob; a tampered file fails.
func (d *Device) fetch(id string) ([]byte, error) {
	if data, ok, err := d.packs.get(id); ok {
		return data, err
	}
	sealed, err := os.ReadFile(d.path(id))
	if err != nil {
		return nil, err
	}
	n := d.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("truncated blob")
	}
	return d.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
}

// List returns the ids of the blobs held, sorted.
func (d *Device) List() ([]string, error) {
	entries, err := os.ReadDir(d.blobs)
	if err != nil {
		return nil, err
	}
	ids := d.packs.ids()
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, strings.TrimSuffix(e.Name(), chunkedSuffix))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Locate returns the file and the byte range holding a blob's sealed copy
// (for inspection: tests read and damage copies through it). A blob stored
// in its own file is the whole file (n is -1).
func (d *Device) Locate(id string) (path string, off, n int64, err error) {
	if path, off, n, ok := d.packs.locate(id); ok {
		return path, off, n, nil
	}
	for _, p := range []string{d.path(id), d.path(id) + chunkedSuffix} {
		if _, err := os.Stat(p); err == nil {
			return p, 0, -1, nil
		}
	}
	return "", 0, 0, os.ErrNotExist
}

// Dir is the device's directory (tests read the files to check layer 3).
func (d *Device) Dir() string { return d.cfg.Dir }

// Holdings lists the blob ids held in a device directory, read from the
// disk (the device may be running or not): for audits and tests.
func Holdings(dir string) ([]string, error) {
	seen := map[string]bool{}
	packsDir := filepath.Join(dir, "packs")
	entries, err := os.ReadDir(packsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), packSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		recs, err := readFooter(filepath.Join(packsDir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // rewritten away meanwhile
		} else if err != nil {
			return nil, err
		}
		for id := range recs {
			seen[id] = true
		}
	}
	if entries, err = os.ReadDir(filepath.Join(dir, "blobs")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			seen[strings.TrimSuffix(e.Name(), chunkedSuffix)] = true
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Run starts a device and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	d.Close()
	return nil
}
