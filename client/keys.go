package client

import "github.com/privicore/privicore/internal/keys"

// GenerateKeyPair makes a Curve25519 key pair locally: the private key as 64
// hex characters (keep it secret) and the signed public key (200 hex) to
// register.
func GenerateKeyPair() (privateHex, signedPublicHex string, err error) {
	priv, err := keys.Generate()
	if err != nil {
		return "", "", err
	}
	return keys.EncodePrivate(priv), keys.SignedPublic(priv), nil
}

// SignedPublicKey derives the signed public key from a private key (64 hex).
func SignedPublicKey(privateHex string) (string, error) {
	priv, err := keys.ParsePrivate(privateHex)
	if err != nil {
		return "", err
	}
	return keys.SignedPublic(priv), nil
}
