package httpapi_test

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// signed builds a signed key from raw parts, so tests can break each part.
func signed(tag []byte, key []byte) []byte {
	b := append(append([]byte{}, tag...), key...)
	sum := blake2b.Sum512(b)
	return append(b, sum[:]...)
}

func TestRegisterPublicKeyValidation(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("keys")

	priv, _ := keys.Generate()
	good := keys.SignedPublic(priv)
	raw, _ := hex.DecodeString(good)
	badHash := append([]byte{}, raw...)
	badHash[99] ^= 1
	badTag := signed([]byte{0x31, 0x42, 0x06, 0x00}, raw[4:36])

	for name, key := range map[string]string{
		"bad hash":   hex.EncodeToString(badHash),
		"bad tag":    hex.EncodeToString(badTag),
		"short":      good[:198],
		"long":       good + "00",
		"not hex":    "zz" + good[2:],
		"empty":      "",
		"zero point": hex.EncodeToString(signed(raw[:4], make([]byte, 32))),
	} {
		t.Run(name, func(t *testing.T) {
			r := a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": key})
			expect(t, r, 422)
			errs, _ := r.Map(t)["errors"].(map[string]any)
			if errs["publicKey"] == nil {
				t.Fatalf("422 without errors.publicKey: %s", r.Body)
			}
		})
	}
	expect(t, a.get("/public-key/retrieve-public-key", u.Token), 403) // still inactive

	// Upper-case hex is the same key.
	a.succeed(accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": strings.ToUpper(good)})))
	r := a.get("/public-key/retrieve-public-key", u.Token)
	expect(t, r, 200)
	if r.Map(t)["publicKey"] != good {
		t.Fatalf("retrieved %s, want %s", r.Body, good)
	}
}

func TestRegisterPublicKeyReplacesAndAcceptsCredentials(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("creds")
	p1, _ := keys.Generate()
	p2, _ := keys.Generate()
	k1, k2 := keys.SignedPublic(p1), keys.SignedPublic(p2)

	// Username + password in the body instead of a token.
	a.succeed(accepted(t, a.postForm("/public-key/register-public-key", "", url.Values{"username": {u.Name}, "password": {u.Password}, "publicKey": {k1}})))
	expect(t, a.postForm("/public-key/register-public-key", "", url.Values{"username": {u.Name}, "password": {"bad-" + u.Password}, "publicKey": {k1}}), 401)
	if got := a.get("/public-key/retrieve-public-key", u.Token).Map(t)["publicKey"]; got != k1 {
		t.Fatalf("key %v, want k1", got)
	}
	a.succeed(accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": k2})))
	if got := a.get("/public-key/retrieve-public-key", u.Token).Map(t)["publicKey"]; got != k2 {
		t.Fatalf("key %v, want k2 (replaced)", got)
	}
	// A device key for a device the caller does not have is rejected on the ack.
	id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": k1, "deviceIdentifier": "0b7c8a4e-1111-4c4c-9d9d-123456789abc"}))
	if st, body := a.settle(id); st != 3 || body != "device.not_found" {
		t.Fatalf("device key: %d %q", st, body)
	}
	expect(t, a.get("/public-key/retrieve-public-key?deviceIdentifier=0b7c8a4e-1111-4c4c-9d9d-123456789abc", u.Token), 404)
}

func TestRetrievePublicKeyNoneRegistered(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("pk")
	r := a.get("/public-key/retrieve-public-key", u.Token)
	expect(t, r, 200)
	if r.Map(t)["publicKey"] != u.Key {
		t.Fatalf("got %s", r.Body)
	}
}

func TestGenerateKeysAndEngineKey(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	for _, path := range []string{"/generate-keys", "/public-key/generate-keys"} {
		r := a.get(path, "")
		expect(t, r, 200)
		m := r.Map(t)
		priv, err := keys.ParsePrivate(m["private"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if keys.SignedPublic(priv) != m["public"] {
			t.Fatalf("public key does not match the private key")
		}
	}
	u := a.activeUser("cab")
	var got []string
	for _, path := range []string{"/dptcab/public-key", "/public-key/retrieve-cab-public-key"} {
		r := a.get(path, u.Token)
		expect(t, r, 200)
		k, _ := r.Map(t)["publicKey"].(string)
		if _, err := keys.ParseSigned(k); err != nil {
			t.Fatalf("engine key %q: %v", k, err)
		}
		got = append(got, k)
	}
	if got[0] != got[1] || got[0] != e.EngineKey {
		t.Fatalf("engine keys differ: %v", got)
	}
	expect(t, a.get("/dptcab/public-key", ""), http.StatusUnauthorized)
}
