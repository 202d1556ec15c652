package storagedevice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Writing packs: building a pack file, committing a batch of stores and
// removals durably, and rewriting packs that lost blobs.

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
