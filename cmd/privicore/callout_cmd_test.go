package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

// `callout-key generate` writes an account seed, mode 0600, prints its
// public key on stdout (for the servers' auth_callout.issuer), and never
// overwrites a file.
func TestCalloutKeyGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callout.seed")
	gen := func() (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"callout-key", "generate", path}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		return out.String(), err
	}
	out, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %04o, want 0600", perm)
	}
	seed, _ := os.ReadFile(path)
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatalf("the file holds no seed: %v", err)
	}
	pub, _ := kp.PublicKey()
	if !nkeys.IsValidPublicAccountKey(pub) {
		t.Fatalf("not an account key: %s", pub)
	}
	if strings.TrimSpace(out) != pub {
		t.Fatalf("printed %q, want the seed's public key %s", out, pub)
	}
	if _, err := gen(); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("a second generate: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, seed) {
		t.Fatal("the existing key file was changed")
	}
}
