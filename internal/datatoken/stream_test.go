package datatoken_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
)

// corruptChunk flips one byte inside chunk seq of blob as the storage
// device in dir keeps it, re-sealed under the device's at-rest key: the
// device serves the chunk as intact (its own layer is sound), so only the
// engine's layer-2 check can tell.
func corruptChunk(t *testing.T, dir, blob string, seq int) {
	t.Helper()
	key, err := keys.LoadOrCreateSecretFile(filepath.Join(dir, "at-rest.key"), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	path := filepath.Join(dir, "blobs", blob+".c")
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	size := len(f) - 8
	record := int(binary.BigEndian.Uint64(f[size:]))
	off := seq * record
	rec := f[off : off+min(record, size-off)]
	ad := binary.BigEndian.AppendUint64([]byte(blob), uint64(seq))
	ns := aead.NonceSize()
	plain, err := aead.Open(nil, rec[:ns], rec[ns:], ad)
	if err != nil {
		t.Fatalf("chunk %d of %s: %v", seq, blob, err)
	}
	plain[len(plain)/2] ^= 1
	copy(rec[ns:], aead.Seal(nil, rec[:ns], plain, ad))
	if err := os.WriteFile(path, f, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A streamed payload whose chunk one device returns corrupted is read
// from another device; when every device's copy is corrupt the read fails
// with storage.read_failed (never wrong bytes), and a device catching up
// copies nothing from corrupt peers.
func TestCorruptChunkOfAStreamedPayload(t *testing.T) {
	w := newWorld(t)
	u := w.owner("u")
	_, _, dirA := u.device("a")
	_, _, dirB := u.device("b")
	dt := w.e.DataTokens

	cmd, _ := w.reserve(u, 0)
	_, stream, err := dt.TemporaryToken(ctx, u.ID, cmd)
	if err != nil {
		t.Fatal(err)
	}
	payload := wire(t, 2*datatoken.ChunkSize+1000)
	c := w.succeed(dt.Upload(ctx, uploadSecret(t, stream), bytes.NewReader(payload)))
	tok := w.token(u, c.Body)
	if tok.Chunks != 3 {
		t.Fatalf("streamed payload in %d chunks, want 3", tok.Chunks)
	}
	if got, err := dt.ReadPayload(ctx, tok); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}

	corruptChunk(t, dirA, tok.BlobID, 1)
	if got, err := dt.ReadPayload(ctx, tok); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read with one corrupt copy: %d bytes, %v", len(got), err)
	}

	corruptChunk(t, dirB, tok.BlobID, 1)
	if _, err := dt.ReadPayload(ctx, tok); privicore.ErrorReason(err) != fanout.ReasonReadFailed {
		t.Fatalf("read with every copy corrupt: %v, want %s", err, fanout.ReasonReadFailed)
	}

	// A new device catching up must not take a corrupt copy.
	d, idC, _ := u.device("c")
	if out := u.wait(u.c.SyncStorage(ctx, idC)); out.Body != `{"copied":0,"failed":1}` {
		t.Fatalf("sync from corrupt peers: %s", out.Body)
	}
	if have, _ := d.List(); slices.Contains(have, tok.BlobID) {
		t.Fatal("the catching-up device kept a corrupt copy")
	}
	if holders, _ := w.e.Store.BlobHolders(ctx, tok.BlobID); slices.Contains(holders, idC) {
		t.Fatalf("the catching-up device recorded as a holder: %v", holders)
	}
}
