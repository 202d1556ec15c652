package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/keys"
)

// runEnv runs the program in-process with the environment env, returning
// stdout and stderr apart.
func runEnv(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestConfigDirResolution(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PRIVICORE_CONFIG_DIR": "/a", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/a"},
		{map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/privicore"},
		{map[string]string{"HOME": "/h"}, "/h/.config/privicore"},
	} {
		e := &env{getenv: func(k string) string { return tc.env[k] }}
		if got, err := configDir(e); err != nil || got != tc.want {
			t.Errorf("%v: %q %v, want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := configDir(&env{getenv: func(string) string { return "" }}); err == nil {
		t.Error("no HOME and no config dir: no error")
	}
}

func TestConfigFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "privicore")
	e := &env{getenv: func(k string) string {
		if k == "PRIVICORE_CONFIG_DIR" {
			return dir
		}
		return ""
	}}
	if c, err := loadConfig(e); err != nil || *c != (config{}) {
		t.Fatalf("missing config: %+v %v", c, err)
	}
	want := &config{Server: "http://h:1", Username: "ann", Token: "T-secret"}
	for range 2 { // created, then replaced
		if err := saveConfig(e, want); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "config.json"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("config file: %v %v", st, err)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("config dir: %v %v", st, err)
	}
	if got, err := loadConfig(e); err != nil || *got != *want {
		t.Fatalf("read back %+v %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left-over files: %v", entries)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o600)
	if _, err := loadConfig(e); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("corrupt config: %v", err)
	}
}

func TestServerResolution(t *testing.T) {
	envs := map[string]string{}
	e := &env{getenv: func(k string) string { return envs[k] }}
	f := &clientFlags{}
	saved := &config{Server: "http://saved:1"}
	if got := f.resolve(e, &config{}); got != defaultServer {
		t.Errorf("default: %q", got)
	}
	if got := f.resolve(e, saved); got != "http://saved:1" {
		t.Errorf("saved: %q", got)
	}
	envs["PRIVICORE_SERVER"] = "http://env:1"
	if got := f.resolve(e, saved); got != "http://env:1" {
		t.Errorf("env: %q", got)
	}
	f.server = "http://flag:1"
	if got := f.resolve(e, saved); got != "http://flag:1" {
		t.Errorf("flag: %q", got)
	}
}

func TestKeyGenerate(t *testing.T) {
	conf := map[string]string{"PRIVICORE_CONFIG_DIR": t.TempDir()}
	path := filepath.Join(t.TempDir(), "device.key")
	out, _, err := runEnv(t, conf, "", "key", "generate", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	priv, err := keys.ReadPrivateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != keys.SignedPublic(priv) {
		t.Fatalf("printed %q, want the signed public key of the file", got)
	}
	if _, err := keys.ParseSigned(strings.TrimSpace(out)); err != nil {
		t.Fatalf("printed key does not parse: %v", err)
	}
	before, _ := os.ReadFile(path)
	if _, _, err := runEnv(t, conf, "", "key", "generate", "--out", path); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the existing key file changed")
	}
}

func TestCLIArgumentErrors(t *testing.T) {
	conf := t.TempDir()
	loggedOut := map[string]string{"PRIVICORE_CONFIG_DIR": conf}
	loggedIn := map[string]string{"PRIVICORE_CONFIG_DIR": t.TempDir()}
	if err := saveConfig(&env{getenv: func(k string) string { return loggedIn[k] }}, &config{Server: "http://127.0.0.1:1", Username: "ann", Token: "T-x"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{loggedOut, "pw\n", []string{"profile", "register", "--password-stdin"}, "--username is required"},
		{loggedOut, "", []string{"profile", "register", "--username", "ann"}, "--password-stdin"},
		{loggedOut, "", []string{"profile", "register", "--username", "ann", "--password-stdin"}, "standard input"},
		{loggedOut, "pw\n", []string{"profile", "register", "--username", "ann", "--password-stdin", "--password", "x"}, "not both"},
		{loggedOut, "pw\n", []string{"login", "--password-stdin"}, "--username is required"},
		{loggedOut, "", []string{"login", "--username", "ann"}, "--password-stdin"},
		{loggedOut, "", []string{"login", "extra"}, "unknown command"},
		{loggedOut, "", []string{"profile", "whoami"}, "not logged in"},
		{loggedOut, "", []string{"profile", "logout"}, "not logged in"},
		{loggedOut, "a\nb\n", []string{"profile", "passwd", "--passwords-stdin"}, "not logged in"},
		{loggedOut, "", []string{"key", "register", "--public", "ab"}, "not logged in"},
		{loggedIn, "a\nb\n", []string{"profile", "passwd"}, "--passwords-stdin"},
		{loggedIn, "only-one\n", []string{"profile", "passwd", "--passwords-stdin"}, "2 line(s)"},
		{loggedIn, "", []string{"key", "register"}, "--key FILE or --public HEX"},
		{loggedIn, "", []string{"key", "register", "--key", "k", "--public", "ab"}, "not both"},
		{loggedIn, "", []string{"key", "register", "--key", filepath.Join(conf, "missing.key")}, "missing.key"},
		{loggedIn, "", []string{"key", "generate", "--out", filepath.Join(conf, "no", "such", "dir", "k")}, "no such file"},
		{loggedIn, "", []string{"profile", "whoami", "--bogus"}, "unknown flag"},
		{loggedIn, "", []string{"profile", "whoami", "extra"}, "unknown command"},
	} {
		_, _, err := runEnv(t, tc.env, tc.stdin, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "config.json")); !os.IsNotExist(err) {
		t.Errorf("a failed command wrote the config: %v", err)
	}
}

// fakeEngine answers authenticate, profile id and expiry.
func fakeEngine(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/profile/authenticate":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			if body["password"] != "s3cret-Pass-phrase" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"unauthorized","message":"invalid credentials"}`)
				return
			}
			io.WriteString(w, `{"authorizationToken":"T-fake-token","expiresAt":"2030-01-02T03:04:05+00:00"}`)
		case "/profile/retrieve-profile-id":
			if r.Header.Get("X-DPT-AUTHORIZATION") != "T-fake-token" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"unauthorized","message":"invalid token"}`)
				return
			}
			io.WriteString(w, `{"profileId":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}`)
		case "/profile/authorization-token/expiry":
			io.WriteString(w, `{"expiresAt":"2030-01-02T03:04:05+00:00"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","message":"no route"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoginPasswordSourcesAndSavedServer(t *testing.T) {
	srv := fakeEngine(t)
	env := map[string]string{"PRIVICORE_CONFIG_DIR": t.TempDir(), "PRIVICORE_SERVER": srv.URL}

	// --password works but warns; the token is not printed.
	out, errOut, err := runEnv(t, env, "", "login", "--username", "ann", "--password", "s3cret-Pass-phrase")
	if err != nil || !strings.Contains(errOut, "warning") || strings.Contains(out+errOut, "T-fake-token") ||
		!strings.HasPrefix(out, "Logged in as ann (token expires ") {
		t.Fatalf("login --password: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	// PRIVICORE_PASSWORD: no warning; --print-token prints it.
	env["PRIVICORE_PASSWORD"] = "s3cret-Pass-phrase"
	out, errOut, err = runEnv(t, env, "", "login", "--username", "ann", "--print-token")
	if err != nil || errOut != "" || !strings.HasSuffix(out, "\nT-fake-token\n") {
		t.Fatalf("login with PRIVICORE_PASSWORD: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	// --password-stdin takes the first line only.
	delete(env, "PRIVICORE_PASSWORD")
	if _, _, err := runEnv(t, env, "s3cret-Pass-phrase\nignored\n", "login", "--username", "ann", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runEnv(t, env, "wrong\n", "login", "--username", "ann", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "invalid credentials") {
		t.Fatalf("wrong password: %v", err)
	}

	// Without PRIVICORE_SERVER the saved server is used; --server before the
	// subcommand works too.
	delete(env, "PRIVICORE_SERVER")
	out, _, err = runEnv(t, env, "", "profile", "whoami")
	if err != nil || !strings.Contains(out, "ann") || !strings.Contains(out, "01HZZZZZZZZZZZZZZZZZZZZZZZ") || !strings.Contains(out, srv.URL) {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	if _, _, err := runEnv(t, env, "", "profile", "--server", "http://127.0.0.1:1", "whoami"); err == nil {
		t.Fatal("--server before the subcommand was ignored")
	}
}
