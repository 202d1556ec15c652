package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kek runs `privicore kek` in-process with args.
func kek(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"kek"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &out)
	return out.String(), err
}

// `kek generate` writes 32 random bytes in base64 on one line, mode 0600,
// and never overwrites a file.
func TestKEKGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	if out, err := kek("generate", path); err != nil {
		t.Fatalf("kek generate: %v: %s", err, out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %04o, want 0600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "\n") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("not one line: %q", b)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		t.Fatalf("content %q: %d bytes (%v), want 32 in base64", b, len(raw), err)
	}
	if _, err := kek("generate", path); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("a second generate on the file: %v, want a refusal", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, b) {
		t.Fatal("the existing KEK file was changed")
	}
	other := filepath.Join(t.TempDir(), "kek")
	kek("generate", other)
	if o, _ := os.ReadFile(other); bytes.Equal(o, b) {
		t.Fatal("two generates wrote the same KEK")
	}
}

// serve refuses a KEK file others may read, one that does not hold a KEK,
// one that is missing (by flag or PRIVICORE_KEK_FILE), and PostgreSQL
// without a KEK, each time saying what to do.
func TestServeRefusesBadKEK(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if _, err := kek("generate", good); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	b, _ := os.ReadFile(good)
	os.WriteFile(open, b, 0o644)
	os.Chmod(open, 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))+"\n"), 0o600)
	notB64 := filepath.Join(dir, "hex")
	os.WriteFile(notB64, []byte(strings.Repeat("zz", 32)+"!\n"), 0o600)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--kek-file", open}, "chmod 600 " + open},
		{map[string]string{"PRIVICORE_KEK_FILE": open}, nil, "chmod 600 " + open},
		{nil, []string{"--kek-file", short}, "does not hold 32 bytes in base64"},
		{nil, []string{"--kek-file", notB64}, "does not hold 32 bytes in base64"},
		{nil, []string{"--kek-file", filepath.Join(dir, "missing")}, "no such file"},
		// Refused before the database is reached: nobody listens there.
		{nil, []string{"--database", "postgres://privicore@" + freeAddr(t) + "/privicore"}, "privicore kek generate FILE"},
	} {
		err := serve(t, c.env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v (env %v): %v, want an error with %q", c.args, c.env, err, c.want)
		}
	}
}
