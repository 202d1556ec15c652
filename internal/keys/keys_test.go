package keys_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/privicore/privicore/internal/keys"
)

func TestSignedKeyKnownAnswerAndRoundTrip(t *testing.T) {
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := keys.SignedPublic(priv)
	if len(s) != 200 || s != strings.ToLower(s) {
		t.Fatalf("signed key %q", s)
	}
	raw, _ := hex.DecodeString(s)
	// Independently: tag, key, BLAKE2b-512 of the first 36 bytes.
	if !bytes.Equal(raw[:4], []byte{0x31, 0x42, 0x05, 0x00}) || !bytes.Equal(raw[4:36], priv.PublicKey().Bytes()) {
		t.Fatalf("layout wrong: %x", raw[:36])
	}
	h, _ := blake2b.New512(nil)
	h.Write(raw[:36])
	if !bytes.Equal(h.Sum(nil), raw[36:]) {
		t.Fatal("checksum is not BLAKE2b-512 of tag+key")
	}
	pub, err := keys.ParseSigned(strings.ToUpper(s))
	if err != nil || !bytes.Equal(pub, priv.PublicKey().Bytes()) {
		t.Fatalf("parse: %x %v", pub, err)
	}
}

func TestParseSignedRejectsEachCause(t *testing.T) {
	priv, _ := keys.Generate()
	s := keys.SignedPublic(priv)
	raw, _ := hex.DecodeString(s)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return hex.EncodeToString(b)
	}
	zero, _ := keys.EncodeSigned(make([]byte, 32))
	cases := map[string]struct{ in, want string }{
		"short":    {s[:198], "200 hexadecimal"},
		"long":     {s + "ab", "200 hexadecimal"},
		"not hex":  {"g" + s[1:], "hexadecimal"},
		"tag":      {flip(2), "version tag"},
		"checksum": {flip(99), "checksum"},
		"key byte": {flip(10), "checksum"},
		"zero key": {zero, "not a valid Curve25519"},
	}
	for name, c := range cases {
		_, err := keys.ParseSigned(c.in)
		fe, ok := err.(*keys.FormatError)
		if !ok || !strings.Contains(fe.Error(), c.want) {
			t.Errorf("%s: %v, want a FormatError about %q", name, err, c.want)
		}
	}
}

func TestPrivateKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "engine.key")
	priv, created, err := keys.LoadOrCreatePrivateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	again, created, err := keys.LoadOrCreatePrivateKeyFile(path)
	if err != nil || created || !again.Equal(priv) {
		t.Fatalf("reload: %v %v", created, err)
	}
	if err := keys.WritePrivateKeyFile(path, priv); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	os.Chmod(path, 0o644)
	if _, err := keys.ReadPrivateKeyFile(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("nothex"), 0o600)
	if _, err := keys.ReadPrivateKeyFile(bad); err == nil {
		t.Fatal("garbage key accepted")
	}
}

func TestSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	a, err := keys.LoadOrCreateSecretFile(path, 32)
	if err != nil || len(a) != 32 {
		t.Fatal(err)
	}
	b, err := keys.LoadOrCreateSecretFile(path, 32)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("secret changed: %v", err)
	}
	if _, err := keys.LoadOrCreateSecretFile(path, 16); err == nil {
		t.Fatal("wrong size accepted")
	}
}

func TestWireSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	wire, err := keys.Seal(key, []byte("hello"))
	if err != nil || len(wire) != 12+5+16 {
		t.Fatalf("seal: %d %v", len(wire), err)
	}
	if got, err := keys.Open(key, wire); err != nil || string(got) != "hello" {
		t.Fatalf("open: %q %v", got, err)
	}
	wire[15] ^= 1
	if _, err := keys.Open(key, wire); err == nil {
		t.Fatal("tampered payload opened")
	}
	if keys.CheckWire(make([]byte, 27)) == nil || keys.CheckWire(make([]byte, 28)) != nil {
		t.Fatal("CheckWire bounds wrong")
	}
	if _, err := keys.Seal(key[:16], nil); err == nil {
		t.Fatal("AES-128 key accepted")
	}
}
