// Package keys implements privicore's key formats: the signed Curve25519
// public key (version tag, key, BLAKE2b-512 checksum), private key files,
// and the AES-256-GCM wire format clients use for payloads.
package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// VersionTag starts every signed public key.
var VersionTag = [4]byte{0x31, 0x42, 0x05, 0x00}

// SignedSize is the byte length of a signed public key (200 hex characters).
const SignedSize = 4 + 32 + blake2b.Size

// FormatError says why a signed public key was refused; its message is
// suitable as a field error.
type FormatError struct{ msg string }

// Error implements error.
func (e *FormatError) Error() string { return e.msg }

// EncodeSigned returns the signed form (200 lowercase hex) of a 32-byte
// Curve25519 public key.
func EncodeSigned(pub []byte) (string, error) {
	if len(pub) != 32 {
		return "", fmt.Errorf("keys: public key must be 32 bytes, got %d", len(pub))
	}
	b := make([]byte, 0, SignedSize)
	b = append(b, VersionTag[:]...)
	b = append(b, pub...)
	sum := blake2b.Sum512(b)
	return hex.EncodeToString(append(b, sum[:]...)), nil
}

// ParseSigned checks a signed public key and returns the 32-byte key. Upper
// and lower case hex are accepted. Every failure is a *FormatError.
func ParseSigned(s string) ([]byte, error) {
	if len(s) != 2*SignedSize {
		return nil, &FormatError{"must be 200 hexadecimal characters (100 bytes)"}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, &FormatError{"must be hexadecimal"}
	}
	if !bytes.Equal(b[:4], VersionTag[:]) {
		return nil, &FormatError{"has an unknown version tag"}
	}
	sum := blake2b.Sum512(b[:36])
	if !bytes.Equal(sum[:], b[36:]) {
		return nil, &FormatError{"has a BLAKE2b-512 checksum that does not match the key"}
	}
	pub := b[4:36]
	if _, err := ecdh.X25519().NewPublicKey(pub); err != nil || isZero(pub) {
		return nil, &FormatError{"is not a valid Curve25519 public key"}
	}
	return append([]byte(nil), pub...), nil
}

func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// Generate returns a fresh X25519 private key.
func Generate() (*ecdh.PrivateKey, error) { return ecdh.X25519().GenerateKey(rand.Reader) }

// SignedPublic returns the signed public key (200 hex) of priv.
func SignedPublic(priv *ecdh.PrivateKey) string {
	s, err := EncodeSigned(priv.PublicKey().Bytes())
	if err != nil {
		panic(err) // an X25519 public key is always 32 bytes
	}
	return s
}

// EncodePrivate returns priv as 64 hex characters.
func EncodePrivate(priv *ecdh.PrivateKey) string { return hex.EncodeToString(priv.Bytes()) }

// ParsePrivate parses 64 hex characters (surrounding space ignored).
func ParsePrivate(s string) (*ecdh.PrivateKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("keys: a private key is 64 hexadecimal characters")
	}
	return ecdh.X25519().NewPrivateKey(b)
}

// WritePrivateKeyFile writes priv to a new file with mode 0600; it never
// overwrites an existing file.
func WritePrivateKeyFile(path string, priv *ecdh.PrivateKey) error {
	return WriteSecretFile(path, []byte(EncodePrivate(priv)+"\n"))
}

// WriteSecretFile creates path (mode 0600; never over an existing file),
// writes data and fsyncs it; on a failure nothing is left behind. The
// error wraps os.ErrExist when path exists.
func WriteSecretFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keys: %w", err)
	}
	return f.Close()
}

// readSecretFile reads path, refusing a file others may read.
func readSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keys: %s is readable by others or writable by them (mode %04o); fix it with: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// CheckPrivateDir returns an error, saying how to fix it, when users other
// than the owner may list or change the directory dir (its group or others
// have read or write permission): a directory holding key files and the
// database must be the owner's alone. Execute permission alone (reaching
// files by name) is allowed; the files themselves are 0600.
func CheckPrivateDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix modes
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("keys: %s is not a directory", dir)
	}
	if perm := st.Mode().Perm(); perm&0o066 != 0 {
		return fmt.Errorf("keys: other users can read or write the directory %s (mode %04o), which holds key files and the database; fix it with: chmod 700 %s", dir, perm, dir)
	}
	return nil
}

// ReadPrivateKeyFile reads a key file written by WritePrivateKeyFile. A file
// readable by group or others is refused.
func ReadPrivateKeyFile(path string) (*ecdh.PrivateKey, error) {
	b, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivate(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// LoadOrCreatePrivateKeyFile reads the key at path, or creates it (and its
// directory, 0700) when missing.
func LoadOrCreatePrivateKeyFile(path string) (priv *ecdh.PrivateKey, created bool, err error) {
	priv, err = ReadPrivateKeyFile(path)
	if err == nil {
		return priv, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("keys: %w", err)
	}
	if priv, err = Generate(); err != nil {
		return nil, false, err
	}
	if err := WritePrivateKeyFile(path, priv); err != nil {
		return nil, false, err
	}
	return priv, true, nil
}

// ReadSecretFile reads a secret of size bytes kept hex encoded at path, as
// LoadOrCreateSecretFile writes it. A file readable by group or others is
// refused; a missing one is an error wrapping os.ErrNotExist.
func ReadSecretFile(path string, size int) ([]byte, error) {
	b, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) != size {
		return nil, fmt.Errorf("keys: %s does not hold a %d-byte hex secret", path, size)
	}
	return secret, nil
}

// LoadOrCreateSecretFile reads a random secret of size bytes kept hex
// encoded at path (0600), creating it when missing.
func LoadOrCreateSecretFile(path string, size int) ([]byte, error) {
	secret, err := ReadSecretFile(path, size)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	secret = make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	if err := WriteSecretFile(path, []byte(hex.EncodeToString(secret)+"\n")); err != nil {
		return nil, err
	}
	return secret, nil
}

// ParsePublicKey checks a signed public key and returns it as an X25519 key.
func ParsePublicKey(signed string) (*ecdh.PublicKey, error) {
	raw, err := ParseSigned(signed)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPublicKey(raw)
}
