package storagedevice

import (
	"bytes"
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

	"golang.org/x/sys/unix"
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

// packWriter builds one pack in memory.
type packWriter struct {
	body   bytes.Buffer
	footer bytes.Buffer
	ids    []string
	recs   []*record
}

func (w *packWriter) add(id string, sealed []byte) {
	r := &record{off: int64(w.body.Len()), n: int64(len(sealed))}
	w.body.Write(sealed)
	w.footer.WriteByte(byte(len(id)))
	w.footer.WriteString(id)
	binary.Write(&w.footer, binary.BigEndian, uint64(r.off))
	binary.Write(&w.footer, binary.BigEndian, uint64(r.n))
	w.ids = append(w.ids, id)
	w.recs = append(w.recs, r)
}

// bytes is the whole pack file.
func (w *packWriter) bytes() []byte {
	binary.Write(&w.footer, binary.BigEndian, uint32(len(w.ids)))
	f := w.footer.Bytes()
	out := append(w.body.Bytes(), f...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(f))
	out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
	return append(out, packMagic...)
}

// writeFile writes data to a temp file in dir and renames it to path;
// with sync the data is made durable before the rename (needed when path
// replaces a pack that holds acknowledged blobs).
func writeFile(dir, path string, data []byte, sync bool) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
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

// change is one change for commit: a blob to store, or to remove (del).
type change struct {
	id   string
	data []byte
	del  bool
}

// commit applies a batch of stores and removals and makes it durable; the
// error applies to the whole batch. Only the writer goroutine calls it.
func (s *packs) commit(ops []change) error {
	// The batch's final state per id, in order: a removal after a store
	// of the same id in one batch wins, and the other way round.
	final := map[string]change{}
	var order []string
	for _, o := range ops {
		if _, seen := final[o.id]; !seen {
			order = append(order, o.id)
		}
		final[o.id] = o
	}
	var writers []*packWriter
	w := &packWriter{}
	for _, id := range order {
		o := final[id]
		if o.del {
			continue
		}
		sealed, err := s.seal(id, o.data)
		if err != nil {
			return err
		}
		if w.body.Len() > 0 && w.body.Len()+len(sealed) > maxPackBytes {
			writers = append(writers, w)
			w = &packWriter{}
		}
		w.add(id, sealed)
	}
	if len(w.ids) > 0 {
		writers = append(writers, w)
	}
	// New packs first, made durable (one sync for the batch) before any
	// older copy goes away.
	var added []*pack
	for _, w := range writers {
		p := &pack{seq: s.seq + 1, live: map[string]struct{}{}}
		if err := writeFile(s.dir, p.name(s.dir), w.bytes(), false); err != nil {
			for _, a := range added {
				os.Remove(a.name(s.dir))
			}
			return err
		}
		s.seq++
		added = append(added, p)
	}
	if len(added) > 0 {
		if err := syncFS(s.dir); err != nil {
			return err
		}
	}
	// Publish the new records; what they replace or what is removed leaves
	// its old pack.
	touched := map[*pack]bool{}
	s.mu.Lock()
	for i, p := range added {
		s.files[p.seq] = p
		for j, id := range writers[i].ids {
			if old, ok := s.index[id]; ok {
				delete(old.p.live, id)
				touched[old.p] = true
			}
			r := writers[i].recs[j]
			r.p = p
			s.index[id] = r
			p.live[id] = struct{}{}
		}
	}
	for _, id := range order {
		if !final[id].del {
			continue
		}
		if old, ok := s.index[id]; ok {
			delete(old.p.live, id)
			delete(s.index, id)
			touched[old.p] = true
		}
	}
	s.mu.Unlock()
	if len(touched) == 0 {
		return nil
	}
	list := make([]*pack, 0, len(touched))
	for p := range touched {
		list = append(list, p)
	}
	if err := s.rewrite(list); err != nil {
		return err
	}
	return syncFS(s.dir)
}

// rewrite rewrites each pack with only the blobs it still holds (or
// removes it when it holds none).
func (s *packs) rewrite(list []*pack) error {
	done := map[*pack]bool{}
	for _, p := range list {
		if done[p] {
			continue
		}
		done[p] = true
		path := p.name(s.dir)
		if len(p.live) == 0 {
			s.mu.Lock()
			delete(s.files, p.seq)
			s.mu.Unlock()
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w := &packWriter{}
		ids := make([]string, 0, len(p.live))
		for id := range p.live {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		s.mu.RLock()
		for _, id := range ids {
			r := s.index[id]
			w.add(id, old[r.off:r.off+r.n])
		}
		s.mu.RUnlock()
		// Readers hold mu shared while they read a record: the file and
		// the offsets change together.
		s.mu.Lock()
		err = writeFile(s.dir, path, w.bytes(), true)
		if err == nil {
			for i, id := range w.ids {
				s.index[id].off, s.index[id].n = w.recs[i].off, w.recs[i].n
			}
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
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

// syncFS makes everything written on dir's file system durable: file data
// and directory entries, in one call.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
