package storagedevice

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/privicore/privicore/internal/protocol"
)

// A chunked blob is kept in one file: each chunk sealed under the at-rest
// key with the blob id and its index as associated data, every chunk but
// the last of the same size, so chunk i starts at i × record size.

// chunkedSuffix names a chunked blob's file.
const chunkedSuffix = ".c"

// uploads are the chunked blobs being received.
type uploads struct {
	mu sync.Mutex
	m  map[string]*upload
}

type upload struct {
	f      *os.File
	next   int
	record int64 // size of a full sealed chunk, from chunk 0
}

func chunkAD(id string, seq int) []byte {
	ad := make([]byte, len(id)+8)
	copy(ad, id)
	binary.BigEndian.PutUint64(ad[len(id):], uint64(seq))
	return ad
}

// handleChunk appends one chunk; the last one makes the blob durable.
func (d *Device) handleChunk(m *nats.Msg, id string) {
	seq, err := strconv.Atoi(m.Header.Get(protocol.HeaderSeq))
	if err != nil || seq < 0 {
		d.fail(m, "bad_seq")
		return
	}
	final := m.Header.Get(protocol.HeaderFinal) != ""
	if err := d.appendChunk(id, seq, final, m.Data); err != nil {
		d.log.Error("chunk write failed", "blob", id, "seq", seq, "err", err)
		d.fail(m, "write_failed")
		return
	}
	m.Respond(nil)
}

func (d *Device) appendChunk(id string, seq int, final bool, data []byte) error {
	d.ups.mu.Lock()
	u := d.ups.m[id]
	if seq == 0 {
		if u != nil {
			u.f.Close()
			os.Remove(u.f.Name())
		}
		f, err := os.CreateTemp(d.blobs, ".part-"+id+"-*")
		if err != nil {
			d.ups.mu.Unlock()
			return err
		}
		u = &upload{f: f}
		d.ups.m[id] = u
	}
	d.ups.mu.Unlock()
	if u == nil || u.next != seq {
		return fmt.Errorf("chunk %d out of order", seq)
	}
	nonce := make([]byte, d.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := d.aead.Seal(nonce, nonce, data, chunkAD(id, seq))
	if seq == 0 {
		u.record = int64(len(sealed))
	} else if !final && int64(len(sealed)) != u.record {
		return errors.New("chunks differ in size")
	}
	if _, err := u.f.Write(sealed); err != nil {
		return err
	}
	u.next++
	if !final {
		return nil
	}
	d.ups.mu.Lock()
	delete(d.ups.m, id)
	d.ups.mu.Unlock()
	// The record size goes into the file's last 8 bytes, for reads.
	var tail [8]byte
	binary.BigEndian.PutUint64(tail[:], uint64(u.record))
	if _, err := u.f.Write(tail[:]); err != nil {
		u.f.Close()
		return err
	}
	if err := u.f.Sync(); err != nil {
		u.f.Close()
		return err
	}
	if err := u.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(u.f.Name(), filepath.Join(d.blobs, id+chunkedSuffix)); err != nil {
		return err
	}
	dir, err := os.Open(d.blobs)
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// fetchChunk reads chunk seq of a chunked blob.
func (d *Device) fetchChunk(id string, seq int) ([]byte, error) {
	f, err := os.Open(filepath.Join(d.blobs, id+chunkedSuffix))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size() - 8
	var tail [8]byte
	if size < 0 {
		return nil, errors.New("truncated blob")
	}
	if _, err := f.ReadAt(tail[:], size); err != nil {
		return nil, err
	}
	record := int64(binary.BigEndian.Uint64(tail[:]))
	off := int64(seq) * record
	if record <= 0 || off >= size {
		return nil, os.ErrNotExist
	}
	n := min(record, size-off)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	ns := d.aead.NonceSize()
	if len(buf) < ns {
		return nil, errors.New("truncated chunk")
	}
	return d.aead.Open(nil, buf[:ns], buf[ns:], chunkAD(id, seq))
}

func (d *Device) handleFetchChunk(m *nats.Msg, id string) {
	seq, err := strconv.Atoi(m.Header.Get(protocol.HeaderSeq))
	if err != nil || seq < 0 {
		d.fail(m, "bad_seq")
		return
	}
	data, err := d.fetchChunk(id, seq)
	if errors.Is(err, os.ErrNotExist) {
		d.fail(m, protocol.ErrNotFound)
		return
	} else if err != nil {
		d.log.Error("chunk read failed", "blob", id, "seq", seq, "err", err)
		d.fail(m, "read_failed")
		return
	}
	m.Respond(data)
}
