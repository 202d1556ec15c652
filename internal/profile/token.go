package profile

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Token prefixes: what kind of secret a string is, at a glance.
const (
	prefixAuth   = "T-"  // authorization token
	prefixQR     = "QR-" // device enrollment token
	prefixTemp   = "TT-" // temporary token of the legacy flow
	prefixAction = "A-"  // attempt-authentication action id
)

// PrefixAuth starts every authorization token, OAuth access tokens included.
const PrefixAuth = prefixAuth

// NewSecret returns prefix + 256 random bits, URL-safe.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the id a secret is stored under: hex SHA-256. Secrets
// are 256-bit random, so a fast hash is enough; the lookup by hash means no
// secret is ever compared byte by byte.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
