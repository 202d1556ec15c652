// Authenticators: the ballot the engine sends (subject <root>.to.ballot)
// and the answer a device sends back (a request on <root>.from.vote).
//
// An answer is authenticated with the device's own key: its MAC key comes
// from X25519 between the device's private key and the engine's public key
// (the engine computes the same from its private key and the device's
// registered public key), and covers the pool, the attempt, the device and
// the vote. The bus already confines a device to its own subjects; the MAC
// makes the answer the key holder's, and the attempt number keeps an answer
// from counting in another attempt.
package protocol

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"time"
)

// Authenticator subjects (the last token after <root>.to. / <root>.from.).
const (
	OpBallot = "ballot" // engine → device
	OpVote   = "vote"   // device → engine (request; the reply is a Receipt)
)

// Ballot asks one authenticator about one pool attempt.
type Ballot struct {
	PoolID           string         `json:"poolId"`
	Attempt          int            `json:"attempt"`
	DeviceIdentifier string         `json:"deviceIdentifier"` // the device asked
	Event            string         `json:"event"`            // what would happen, e.g. data-token.delete
	Title            string         `json:"title,omitempty"`
	Question         string         `json:"question,omitempty"`
	Detail           map[string]any `json:"detail,omitempty"` // application, data token, device…
	ExpiresAt        time.Time      `json:"expiresAt"`
}

// Answer is a device's vote on a ballot.
type Answer struct {
	PoolID  string `json:"poolId"`
	Attempt int    `json:"attempt"`
	Vote    string `json:"vote"` // "yes" or "no"
	MAC     string `json:"mac"`  // base64 of HMAC-SHA256 (see Sign)
}

// Receipt is the engine's reply to an answer.
type Receipt struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"` // why it was refused
}

// Reasons an answer is refused.
const (
	RefusedNotEligible = "voting.not_eligible"     // the pool did not ask this device
	RefusedAnswered    = "voting.already_answered" // the device answered this attempt
	RefusedClosed      = "voting.pool_closed"      // the attempt is over (deadline or outcome)
	RefusedSignature   = "voting.bad_signature"    // the MAC is not the device key's
	RefusedMalformed   = "voting.malformed_answer" // not an answer
	RefusedUnknownPool = "voting.pool_not_found"   // no such pool for the device's profile
)

// key derives the MAC key from an X25519 shared secret.
func key(shared []byte) []byte {
	h := sha256.New()
	h.Write([]byte("privicore vote v1\x00"))
	h.Write(shared)
	return h.Sum(nil)
}

func message(poolID string, attempt int, deviceID, vote string) []byte {
	return []byte(poolID + "\x00" + strconv.Itoa(attempt) + "\x00" + deviceID + "\x00" + vote)
}

// Sign fills a.MAC for the device deviceID with its private key and the
// engine's public key.
func Sign(a *Answer, deviceID string, devicePriv *ecdh.PrivateKey, enginePub *ecdh.PublicKey) error {
	shared, err := devicePriv.ECDH(enginePub)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key(shared))
	m.Write(message(a.PoolID, a.Attempt, deviceID, a.Vote))
	a.MAC = base64.StdEncoding.EncodeToString(m.Sum(nil))
	return nil
}

// Verify checks a's MAC as the device deviceID's, with the engine's private
// key and the device's public key; it compares in constant time.
func Verify(a *Answer, deviceID string, enginePriv *ecdh.PrivateKey, devicePub *ecdh.PublicKey) error {
	got, err := base64.StdEncoding.DecodeString(a.MAC)
	if err != nil {
		return errors.New("bad mac encoding")
	}
	shared, err := enginePriv.ECDH(devicePub)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key(shared))
	m.Write(message(a.PoolID, a.Attempt, deviceID, a.Vote))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("mac mismatch")
	}
	return nil
}
