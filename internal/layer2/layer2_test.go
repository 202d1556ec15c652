package layer2_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/layer2"
)

func masterKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, layer2.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestBlobOpensOnlyAsItWasSealed(t *testing.T) {
	s := layer2.New(masterKey(t))
	payload := []byte("layer-1 ciphertext from the client")
	blob, wrapped, err := s.SealBlob("blob-1", payload)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, payload) || bytes.Contains(wrapped, payload) {
		t.Fatal("the sealed blob or the wrapped key carries the payload in the clear")
	}
	got, err := s.OpenBlob("blob-1", wrapped, blob)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("open = %q, %v", got, err)
	}

	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.OpenBlob("blob-1", wrapped, tampered); err == nil {
		t.Error("a tampered blob opened")
	}
	if _, err := s.OpenBlob("blob-2", wrapped, blob); err == nil {
		t.Error("a blob opened under another blob id")
	}
	if _, err := s.OpenBlob("blob-1", wrapped, blob[:10]); err == nil {
		t.Error("a truncated blob opened")
	}
	if _, err := layer2.New(masterKey(t)).OpenBlob("blob-1", wrapped, blob); err == nil {
		t.Error("a blob opened under another master key")
	}
	_, otherWrapped, err := s.SealBlob("blob-1", payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenBlob("blob-1", otherWrapped, blob); err == nil {
		t.Error("a blob opened with another payload's data key: data keys are not fresh")
	}
}

func TestChunksOpenOnlyInTheirPlace(t *testing.T) {
	s := layer2.New(masterKey(t))
	st, err := s.NewStream("blob-s")
	if err != nil {
		t.Fatal(err)
	}
	chunks := [][]byte{[]byte("chunk zero"), []byte("chunk one"), []byte("chunk two")}
	var sealed [][]byte
	for i, c := range chunks {
		b, err := st.Seal(i, c)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, b)
	}
	wrapped, err := st.Wrapped()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		got, err := s.OpenChunk("blob-s", wrapped, i, sealed[i])
		if err != nil || !bytes.Equal(got, c) {
			t.Fatalf("chunk %d = %q, %v", i, got, err)
		}
	}
	if _, err := s.OpenChunk("blob-s", wrapped, 1, sealed[0]); err == nil {
		t.Error("chunk 0 opened as chunk 1: reordering is not detected")
	}
	if _, err := s.OpenChunk("blob-t", wrapped, 0, sealed[0]); err == nil {
		t.Error("a chunk opened under another blob id: splicing is not detected")
	}
}

func TestDeriveIsStableAndPurposeBound(t *testing.T) {
	m := masterKey(t)
	a, b := layer2.New(m).Derive("one"), layer2.New(m).Derive("one")
	if !bytes.Equal(a, b) || len(a) != 32 {
		t.Fatal("derived keys differ for one master key and purpose")
	}
	if bytes.Equal(a, layer2.New(m).Derive("two")) {
		t.Fatal("two purposes derive the same key")
	}
}

// The validator reads the wrapped key from the real store, by blob.
func TestValidatorChecksCopiesAgainstTheStoredKey(t *testing.T) {
	ctx := context.Background()
	db := commandtest.Open(t)
	s := layer2.New(masterKey(t))
	blob, wrapped, err := s.SealBlob("blob-v", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.NewStream("blob-c")
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := st.Seal(0, []byte("streamed"))
	if err != nil {
		t.Fatal(err)
	}
	chunkWrapped, err := st.Wrapped()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	err = db.Write(ctx, func(q privicore.Queries) error {
		if err := q.CreateProfile(ctx, &privicore.Profile{ID: "p1", Username: "u1", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for _, dt := range []*privicore.DataToken{
			{ID: "t1", ProfileID: "p1", ReservationID: "c1", TempToken: "tmp-1", Token: "dtk-1", BlobID: "blob-v", WrappedKey: wrapped, State: privicore.TokenStored, Meta: map[string]any{}, CreatedAt: now, UpdatedAt: now},
			{ID: "t2", ProfileID: "p1", ReservationID: "c2", TempToken: "tmp-2", Token: "dtk-2", BlobID: "blob-c", WrappedKey: chunkWrapped, Chunks: 1, State: privicore.TokenStored, Meta: map[string]any{}, CreatedAt: now, UpdatedAt: now},
		} {
			if err := q.CreateDataToken(ctx, dt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := layer2.NewValidator(s, db)
	if !v.ValidBlob("blob-v", blob) {
		t.Error("an intact copy is refused")
	}
	bad := bytes.Clone(blob)
	bad[len(bad)/2] ^= 0x80
	if v.ValidBlob("blob-v", bad) {
		t.Error("a corrupted copy is accepted")
	}
	if v.ValidBlob("blob-unknown", blob) {
		t.Error("a copy of a blob no token holds is accepted")
	}
	if !v.ValidChunk("blob-c", 0, chunk) {
		t.Error("an intact chunk is refused")
	}
	if v.ValidChunk("blob-c", 1, chunk) {
		t.Error("a chunk in the wrong place is accepted")
	}
	if v.ValidChunk("blob-v", 0, chunk) {
		t.Error("a chunk of another blob is accepted")
	}
}
