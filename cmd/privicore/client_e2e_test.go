package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/enginetest"
)

// runCLI runs the program in-process with its own config dir.
func runCLI(t *testing.T, confDir, stdin string, args ...string) (string, error) {
	t.Helper()
	env := map[string]string{"PRIVICORE_CONFIG_DIR": confDir}
	var out bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &out)
	return out.String(), err
}

// TestCLIInProcess runs the client commands against a real engine:
// register → login → key generate → key register → whoami → passwd → logout.
func TestCLIInProcess(t *testing.T) {
	e := enginetest.Start(t)
	conf := t.TempDir()
	srv := "--server=" + e.URL

	if _, err := runCLI(t, conf, "", "profile", "whoami", srv); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("whoami before login: %v", err)
	}
	if _, err := runCLI(t, conf, "x\n", "profile", "register", srv, "--password-stdin"); err == nil || !strings.Contains(err.Error(), "--username") {
		t.Fatalf("register without username: %v", err)
	}
	if _, err := runCLI(t, conf, "", "profile", "register", srv, "--username", "cli-user"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("register without a password: %v", err)
	}
	out, err := runCLI(t, conf, "weak\n", "profile", "register", srv, "--username", "cli-user", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "password") {
		t.Fatalf("weak password: %v %s", err, out)
	}
	out, err = runCLI(t, conf, strongPassword+"\n", "profile", "register", srv, "--username", "cli-user", "--given-name", "Cli", "--password-stdin")
	if err != nil {
		t.Fatalf("register: %v %s", err, out)
	}
	profileID := strings.TrimSpace(strings.TrimPrefix(out, "Profile registered:"))
	if len(profileID) != 26 {
		t.Fatalf("register printed %q", out)
	}
	if _, err := runCLI(t, conf, strongPassword+"\n", "profile", "register", srv, "--username", "CLI-user", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("taken username: %v", err)
	}
	if _, err := runCLI(t, conf, "wrong-"+strongPassword+"\n", "login", srv, "--username", "cli-user", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("login with a wrong password: %v", err)
	}
	out, err = runCLI(t, conf, strongPassword+"\n", "login", srv, "--username", "cli-user", "--password-stdin")
	if err != nil || !strings.HasPrefix(out, "Logged in as cli-user (token expires ") {
		t.Fatalf("login: %v %s", err, out)
	}
	st, err := os.Stat(filepath.Join(conf, "config.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v %v", st, err)
	}
	var saved struct {
		Server, Username, Token string
		ExpiresAt               time.Time
	}
	b, _ := os.ReadFile(filepath.Join(conf, "config.json"))
	if err := json.Unmarshal(b, &saved); err != nil || saved.Server != e.URL || saved.Username != "cli-user" ||
		!strings.HasPrefix(saved.Token, "T-") || time.Until(saved.ExpiresAt) < time.Hour {
		t.Fatalf("saved config %s: %v", b, err)
	}
	if strings.Contains(out, saved.Token) {
		t.Fatal("login printed the token without --print-token")
	}

	key := filepath.Join(t.TempDir(), "k.key")
	out, err = runCLI(t, conf, "", "key", "generate", "--out", key)
	if err != nil || len(strings.TrimSpace(out)) != 200 {
		t.Fatalf("key generate: %v %q", err, out)
	}
	signed := strings.TrimSpace(out)
	if _, err := runCLI(t, conf, "", "key", "generate", "--out", key); err == nil {
		t.Fatal("key generate overwrote a key file")
	}
	// Inactive profile: passwd is refused with the reason.
	_, err = runCLI(t, conf, strongPassword+"\nAn0ther!strong-passphrase-here\n", "profile", "passwd", "--passwords-stdin")
	if err == nil || !strings.Contains(err.Error(), "profile.public_key_required") {
		t.Fatalf("passwd without a key: %v", err)
	}
	if _, err := runCLI(t, conf, "", "key", "register", "--public", strings.Repeat("0", 200)); err == nil || !strings.Contains(err.Error(), "publicKey") {
		t.Fatalf("key register with a bad key: %v", err)
	}
	if out, err := runCLI(t, conf, "", "key", "register", "--key", key); err != nil || out != "Public key registered.\n" {
		t.Fatalf("key register: %v %s", err, out)
	}
	c := client.New(e.URL, client.WithToken(saved.Token))
	if got, err := c.RetrievePublicKey(context.Background()); err != nil || got != signed {
		t.Fatalf("registered key %q %v, want the generated one", got, err)
	}
	out, err = runCLI(t, conf, "", "profile", "whoami")
	if err != nil || !strings.Contains(out, "cli-user") || !strings.Contains(out, profileID) || !strings.Contains(out, "token expires") {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	if strings.Contains(out, saved.Token) {
		t.Fatal("whoami printed the token")
	}
	_, err = runCLI(t, conf, "wrong\nAn0ther!strong-passphrase-here\n", "profile", "passwd", "--passwords-stdin")
	if err == nil || !strings.Contains(err.Error(), "profile.wrong_password") {
		t.Fatalf("passwd with a wrong current password: %v", err)
	}
	if out, err := runCLI(t, conf, strongPassword+"\nAn0ther!strong-passphrase-here\n", "profile", "passwd", "--passwords-stdin"); err != nil || !strings.Contains(out, "changed") {
		t.Fatalf("passwd: %v %s", err, out)
	}
	if _, err := runCLI(t, conf, strongPassword+"\n", "login", "--username", "cli-user", "--password-stdin"); err == nil {
		t.Fatal("the old password still logs in")
	}
	out, err = runCLI(t, conf, "An0ther!strong-passphrase-here\n", "login", "--username", "cli-user", "--password-stdin", "--print-token")
	if err != nil || !strings.Contains(out, "\nT-") {
		t.Fatalf("login with the new password: %v %s", err, out)
	}
	token := strings.TrimSpace(out[strings.LastIndex(out, "\nT-"):])
	if out, err := runCLI(t, conf, "", "profile", "logout"); err != nil || !strings.Contains(out, "Logged out") {
		t.Fatalf("logout: %v %s", err, out)
	}
	if _, err := client.New(e.URL, client.WithToken(token)).ProfileID(context.Background()); !client.IsStatus(err, 401) {
		t.Fatalf("the logged-out token still works: %v", err)
	}
	b, _ = os.ReadFile(filepath.Join(conf, "config.json"))
	if strings.Contains(string(b), token) || !strings.Contains(string(b), "cli-user") {
		t.Fatalf("config after logout: %s", b)
	}
	if _, err := runCLI(t, conf, "", "profile", "whoami"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("whoami after logout: %v", err)
	}
}

func TestDeviceEnrollWithQRToken(t *testing.T) {
	e := enginetest.Start(t)
	conf := t.TempDir()
	srv := "--server=" + e.URL
	for _, args := range [][]string{
		{"profile", "register", srv, "--username", "qr-owner", "--password-stdin"},
		{"login", srv, "--username", "qr-owner", "--password-stdin"},
	} {
		if out, err := runCLI(t, conf, strongPassword+"\n", args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	key := filepath.Join(t.TempDir(), "owner.key")
	runCLI(t, conf, "", "key", "generate", "--out", key)
	if out, err := runCLI(t, conf, "", "key", "register", "--key", key); err != nil {
		t.Fatalf("key register: %v %s", err, out)
	}
	c := client.New(e.URL)
	if _, err := c.Authenticate(context.Background(), "qr-owner", strongPassword); err != nil {
		t.Fatal(err)
	}
	qr, err := c.GenerateQRToken(context.Background(), "storage")
	if err != nil {
		t.Fatal(err)
	}
	devKey := filepath.Join(t.TempDir(), "device.key")
	out, err := runCLI(t, t.TempDir(), "", "device", "enroll", srv, "--role", "storage", "--qr-token", qr.Value, "--key-out", devKey, "--name", "scanned")
	if err != nil || !strings.Contains(out, "enrolled") {
		t.Fatalf("enroll with QR: %v %s", err, out)
	}
	if st, err := os.Stat(devKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("device key file: %v %v", st, err)
	}
	out, err = runCLI(t, conf, "", "device", "list")
	if err != nil || !strings.Contains(out, "scanned") || !strings.Contains(out, "storage") || !strings.Contains(out, "approved") {
		t.Fatalf("device list after QR enrollment: %v\n%s", err, out)
	}
	// The QR token enrolls one device only.
	if out, err := runCLI(t, t.TempDir(), "", "device", "enroll", srv, "--role", "storage", "--qr-token", qr.Value, "--key-out", filepath.Join(t.TempDir(), "k2")); err == nil {
		t.Fatalf("a second enrollment with the same QR token: %s", out)
	}
}
