package storagedevice

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Packs hold the small blobs (everything stored in one message): each group
// commit writes its blobs into one new pack file (temp file, rename, one
// sync), instead of one file per blob. Creating a file can cost far more
// than writing 1 KiB (ext4 after many deletions; docs/performance.md).
//
// A pack is the blobs' sealed records (nonce ‖ AES-GCM(blob, AD = id))
// back to back, then a footer: for each blob its id, offset and length,
// then the count, a CRC-32 of the footer, the footer's length and a magic
// string. A pack that does not end in a valid footer (a crash before its
// sync: none of its blobs was acknowledged) is ignored when the directory
// is loaded.
//
// A deleted or replaced blob is removed from the disk at once, not marked:
// its pack is rewritten without it (temp file, fsync, rename over the old
// one) or removed when nothing is left in it, so deleted data cannot come
// back after a restart.
const (
	packMagic  = "PCPACK01"
	packSuffix = ".pk"
	// maxPackBytes bounds one pack: a commit with more is split, and a
	// rewrite never copies more than this.
	maxPackBytes = 8 << 20
)

// packs is the index of the packed blobs, in memory, loaded from the pack
// files at start. Writes (put, remove) come only from the device's writer
// goroutine; reads hold mu shared so that a rewrite never moves a record
// under a reader.
type packs struct {
	dir  string
	aead cipher.AEAD
	log  *slog.Logger

	mu    sync.RWMutex
	index map[string]*record
	files map[uint64]*pack
	seq   uint64 // the last pack number used
}

// pack is one pack file and the ids it still holds.
type pack struct {
	seq  uint64
	live map[string]struct{}
}

// record is where a blob's sealed copy is.
type record struct {
	p   *pack
	off int64
	n   int64
}

func (p *pack) name(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", p.seq, packSuffix))
}

// openPacks loads every valid pack under dir (created if missing) and
// removes leftovers of interrupted writes.
func openPacks(dir string, aead cipher.AEAD, log *slog.Logger) (*packs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &packs{dir: dir, aead: aead, log: log, index: map[string]*record{}, files: map[uint64]*pack{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			os.Remove(filepath.Join(dir, name)) // an unfinished write
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, packSuffix), 16, 64)
		if err != nil || !strings.HasSuffix(name, packSuffix) {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var stale []*pack // packs holding copies a later pack replaced
	for _, seq := range seqs {
		s.seq = max(s.seq, seq)
		p := &pack{seq: seq, live: map[string]struct{}{}}
		recs, err := readFooter(p.name(dir))
		if err != nil {
			log.Error("ignoring an unreadable pack", "pack", p.name(dir), "err", err)
			continue
		}
		s.files[seq] = p
		for id, r := range recs {
			if old, ok := s.index[id]; ok {
				delete(old.p.live, id)
				stale = append(stale, old.p)
			}
			r.p = p
			s.index[id] = r
			p.live[id] = struct{}{}
		}
	}
	// A crash between writing a replacement and rewriting the pack it
	// replaced leaves two copies: finish the job.
	if err := s.rewrite(stale); err != nil {
		return nil, err
	}
	return s, nil
}

// readFooter returns the records listed in a pack's footer.
func readFooter(path string) (map[string]*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	var tail [16]byte
	if size < int64(len(tail)) {
		return nil, errors.New("truncated")
	}
	if _, err := f.ReadAt(tail[:], size-16); err != nil {
		return nil, err
	}
	if string(tail[8:]) != packMagic {
		return nil, errors.New("no footer")
	}
	sum, flen := binary.BigEndian.Uint32(tail[:4]), int64(binary.BigEndian.Uint32(tail[4:8]))
	if flen < 4 || flen > size-16 {
		return nil, errors.New("bad footer length")
	}
	footer := make([]byte, flen)
	if _, err := f.ReadAt(footer, size-16-flen); err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(footer) != sum {
		return nil, errors.New("footer checksum mismatch")
	}
	body := size - 16 - flen
	count := binary.BigEndian.Uint32(footer[flen-4:])
	recs := make(map[string]*record, count)
	b := footer[:flen-4]
	for range count {
		if len(b) < 1 {
			return nil, errors.New("short footer")
		}
		l := int(b[0])
		if len(b) < 1+l+16 {
			return nil, errors.New("short footer")
		}
		id := string(b[1 : 1+l])
		off := int64(binary.BigEndian.Uint64(b[1+l:]))
		n := int64(binary.BigEndian.Uint64(b[9+l:]))
		if off < 0 || n < 0 || off+n > body {
			return nil, errors.New("record outside the pack")
		}
		recs[id] = &record{off: off, n: n}
		b = b[17+l:]
	}
	return recs, nil
}

// seal encrypts a blob under the at-rest key, bound to its id.
func (s *packs) seal(id string, data []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(data)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, data, []byte(id)), nil
}

// open authenticates and decrypts a sealed copy.
func (s *packs) open(id string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("truncated blob")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
}

// get returns a packed blob, opened; ok is false when no pack holds it.
func (s *packs) get(id string) (data []byte, ok bool, err error) {
	s.mu.RLock()
	r, ok := s.index[id]
	if !ok {
		s.mu.RUnlock()
		return nil, false, nil
	}
	sealed := make([]byte, r.n)
	f, err := os.Open(r.p.name(s.dir))
	if err == nil {
		_, err = f.ReadAt(sealed, r.off)
		f.Close()
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, true, err
	}
	data, err = s.open(id, sealed)
	return data, true, err
}

// has reports whether a pack holds id.
func (s *packs) has(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.index[id]
	return ok
}

// ids returns every packed blob id.
func (s *packs) ids() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.index))
	for id := range s.index {
		out = append(out, id)
	}
	return out
}

// locate returns the file and byte range of a packed blob's sealed copy.
func (s *packs) locate(id string) (path string, off, n int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.index[id]
	if !ok {
		return "", 0, 0, false
	}
	return r.p.name(s.dir), r.off, r.n, true
}
