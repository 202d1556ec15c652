package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// The client-side (layer 1) wire format: [12-byte IV][ciphertext][16-byte tag],
// AES-256-GCM.
const (
	IVSize      = 12
	TagSize     = 16
	MinWireSize = IVSize + TagSize
)

// ErrWireTooShort is returned for a payload shorter than MinWireSize.
var ErrWireTooShort = errors.New("must be at least 28 bytes: [12-byte IV][ciphertext][16-byte tag]")

// CheckWire checks the shape of a layer-1 payload (the engine cannot check more).
func CheckWire(wire []byte) error {
	if len(wire) < MinWireSize {
		return ErrWireTooShort
	}
	return nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("keys: AES-256 needs a 32-byte key")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext under key with a random IV, in the wire format.
func Seal(key, plaintext []byte) ([]byte, error) { return SealAD(key, plaintext, nil) }

// Open decrypts a wire-format payload; a tampered one fails.
func Open(key, wire []byte) ([]byte, error) { return OpenAD(key, wire, nil) }

// SealAD is Seal with associated data ad bound to the ciphertext: OpenAD
// opens it only with the same ad. The engine's own layers use it (layer 2,
// the sealed engine keys) with ad naming what was sealed.
func SealAD(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, IVSize, IVSize+len(plaintext)+TagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[:IVSize], plaintext, ad), nil
}

// OpenAD decrypts what SealAD sealed with the same ad; a tampered payload,
// or another ad, fails.
func OpenAD(key, wire, ad []byte) ([]byte, error) {
	if err := CheckWire(wire); err != nil {
		return nil, err
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, wire[:IVSize], wire[IVSize:], ad)
}
