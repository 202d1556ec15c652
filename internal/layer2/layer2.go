// Package layer2 is the engine's encryption of payloads (layer 2 of three:
// the client's own AES-256-GCM is layer 1, each storage device's at-rest
// key is layer 3). Every payload is sealed under a fresh data key
// (AES-256-GCM, the blob id as associated data) and the data key is sealed
// ("wrapped") under the engine's master key with "data-key:<blob id>" as
// associated data. The database keeps only the wrapped key; the devices
// only ever see sealed blobs, so neither alone can read a payload.
//
// A streamed payload is sealed chunk by chunk under one data key, each
// chunk with the blob id and its index as associated data, so a chunk
// cannot be moved to another place or another blob.
package layer2

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/keys"
)

// KeySize is the size of the master key and of every data key.
const KeySize = 32

// Sealer seals and opens payloads under data keys wrapped by the master key.
type Sealer struct{ master []byte }

// New returns a sealer for the engine's 32-byte master key.
func New(master []byte) *Sealer { return &Sealer{master: master} }

// Derive returns a key for purpose derived from the master key
// (HMAC-SHA256 of the purpose), so other secrets need not be stored.
func (s *Sealer) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, s.master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// SealBlob makes the sealed blob of payload and its wrapped data key.
func (s *Sealer) SealBlob(blobID string, payload []byte) (blob, wrapped []byte, err error) {
	dataKey, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	if blob, err = keys.SealAD(dataKey, payload, []byte(blobID)); err != nil {
		return nil, nil, err
	}
	wrapped, err = s.wrap(blobID, dataKey)
	return blob, wrapped, err
}

// OpenBlob returns the payload of a sealed blob; a corrupted or foreign
// blob fails.
func (s *Sealer) OpenBlob(blobID string, wrapped, blob []byte) ([]byte, error) {
	dataKey, err := s.unwrap(blobID, wrapped)
	if err != nil {
		return nil, err
	}
	return keys.OpenAD(dataKey, blob, []byte(blobID))
}

// Stream seals the chunks of one streamed payload under one data key.
type Stream struct {
	s       *Sealer
	blobID  string
	dataKey []byte
}

// NewStream starts sealing the streamed payload blobID.
func (s *Sealer) NewStream(blobID string) (*Stream, error) {
	dataKey, err := newKey()
	if err != nil {
		return nil, err
	}
	return &Stream{s: s, blobID: blobID, dataKey: dataKey}, nil
}

// Seal seals chunk seq (from 0).
func (st *Stream) Seal(seq int, chunk []byte) ([]byte, error) {
	return keys.SealAD(st.dataKey, chunk, chunkAD(st.blobID, seq))
}

// Wrapped is the stream's data key wrapped under the master key.
func (st *Stream) Wrapped() ([]byte, error) { return st.s.wrap(st.blobID, st.dataKey) }

// OpenChunk returns the payload bytes of chunk seq of a streamed blob.
func (s *Sealer) OpenChunk(blobID string, wrapped []byte, seq int, sealed []byte) ([]byte, error) {
	dataKey, err := s.unwrap(blobID, wrapped)
	if err != nil {
		return nil, err
	}
	return keys.OpenAD(dataKey, sealed, chunkAD(blobID, seq))
}

// Blobs finds the data token whose current payload is a blob.
type Blobs interface {
	FindDataTokenByBlob(ctx context.Context, blobID string) (*privicore.DataToken, error)
}

// Validator checks a device's copy of a blob or chunk against its data
// token's wrapped key, so a corrupted copy is never served or copied to
// another device.
type Validator struct {
	sealer *Sealer
	blobs  Blobs
}

// NewValidator returns a validator reading wrapped keys from blobs.
func NewValidator(sealer *Sealer, blobs Blobs) *Validator {
	return &Validator{sealer: sealer, blobs: blobs}
}

// ValidBlob reports whether blob is an intact copy of blobID.
func (v *Validator) ValidBlob(blobID string, blob []byte) bool {
	t, err := v.blobs.FindDataTokenByBlob(context.Background(), blobID)
	if err != nil {
		return false
	}
	_, err = v.sealer.OpenBlob(blobID, t.WrappedKey, blob)
	return err == nil
}

// ValidChunk reports whether chunk is an intact copy of chunk seq of blobID.
func (v *Validator) ValidChunk(blobID string, seq int, chunk []byte) bool {
	t, err := v.blobs.FindDataTokenByBlob(context.Background(), blobID)
	if err != nil {
		return false
	}
	_, err = v.sealer.OpenChunk(blobID, t.WrappedKey, seq, chunk)
	return err == nil
}

func (s *Sealer) wrap(blobID string, dataKey []byte) ([]byte, error) {
	return keys.SealAD(s.master, dataKey, []byte("data-key:"+blobID))
}

func (s *Sealer) unwrap(blobID string, wrapped []byte) ([]byte, error) {
	return keys.OpenAD(s.master, wrapped, []byte("data-key:"+blobID))
}

func newKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

func chunkAD(blobID string, seq int) []byte {
	ad := make([]byte, len(blobID)+8)
	copy(ad, blobID)
	binary.BigEndian.PutUint64(ad[len(blobID):], uint64(seq))
	return ad
}
