package datatoken

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// Layer 2: every payload is sealed by the engine under a fresh data key
// (AES-256-GCM, the blob id as associated data), and the data key is sealed
// under the engine's master key. Devices only ever see the sealed blob.

func aead(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext under key: [nonce][ciphertext+tag].
func seal(key, plaintext, ad []byte) ([]byte, error) {
	a, err := aead(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return a.Seal(nonce, nonce, plaintext, ad), nil
}

func open(key, sealed, ad []byte) ([]byte, error) {
	a, err := aead(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("sealed data too short")
	}
	return a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
}

// sealBlob makes the layer-2 blob of payload and the wrapped data key.
func (s *Service) sealBlob(blobID string, payload []byte) (blob, wrapped []byte, err error) {
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, err
	}
	if blob, err = seal(dataKey, payload, []byte(blobID)); err != nil {
		return nil, nil, err
	}
	wrapped, err = seal(s.master, dataKey, []byte("data-key:"+blobID))
	return blob, wrapped, err
}

// openBlob returns the layer-1 payload of a blob; a corrupted or foreign
// blob fails.
func (s *Service) openBlob(blobID string, wrapped, blob []byte) ([]byte, error) {
	dataKey, err := open(s.master, wrapped, []byte("data-key:"+blobID))
	if err != nil {
		return nil, err
	}
	return open(dataKey, blob, []byte(blobID))
}
