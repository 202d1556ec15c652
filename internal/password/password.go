// Package password hashes passwords with argon2id (PHC strings) and checks
// their strength by estimated entropy.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	passwordvalidator "github.com/wagslane/go-password-validator"
	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
}

// DefaultParams follow OWASP's argon2id recommendation (19 MiB, t=2, p=1).
var DefaultParams = Params{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32}

// MinEntropyBits is the estimated entropy a new password needs.
const MinEntropyBits = 60

// MaxBytes bounds a password (hashing cost and abuse).
const MaxBytes = 1024

// Hash returns the PHC string of pw under DefaultParams.
func Hash(pw string) (string, error) { return HashWith(pw, DefaultParams) }

// HashWith returns the PHC string of pw under p.
func HashWith(pw string, p Params) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// ErrMalformed is returned for a hash string Verify cannot read.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// Verify reports whether pw matches the PHC string encoded. The parameters
// come from the string, so hashes made under older parameters still verify.
func Verify(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrMalformed
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Memory > 1<<21 || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return false, ErrMalformed
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrMalformed
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return false, ErrMalformed
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when the user does not exist.
var dummyHash, _ = Hash("privicore-dummy-password-for-timing")

// VerifyDummy costs the same as Verify of a real default-params hash, so an
// unknown username cannot be told from a wrong password by timing.
func VerifyDummy(pw string) { _, _ = Verify(dummyHash, pw) }

// CheckStrength refuses empty, overlong and low-entropy passwords. Its
// error is a short sentence for a field error.
func CheckStrength(pw string) error {
	switch {
	case pw == "":
		return errors.New("is required")
	case len(pw) > MaxBytes:
		return fmt.Errorf("must be at most %d bytes", MaxBytes)
	case passwordvalidator.GetEntropy(pw) < MinEntropyBits:
		return errors.New("is too weak: use a longer password with more kinds of characters")
	}
	return nil
}
