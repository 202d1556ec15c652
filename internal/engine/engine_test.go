package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/password"
)

// newEngine opens an engine on dir with cfg (free loopback bus port), not
// listening, closed when the test ends.
func newEngine(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	if cfg.BusAddr == "" {
		cfg.BusAddr = "127.0.0.1:0"
	}
	eng, err := engine.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// An engine configured without password parameters hashes under the
// production ones (argon2id, 19 MiB, t=2, p=1): only tests lower them.
func TestPasswordDefaults(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	h := newEngine(t, engine.Config{DataDir: dir}).Profiles.Hasher()
	if h.Params() != password.DefaultParams {
		t.Fatalf("hasher parameters %+v, want the production %+v", h.Params(), password.DefaultParams)
	}
	enc, err := h.Hash(context.Background(), "correct horse battery staple 42!")
	if err != nil || !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q %v, want argon2id m=19456,t=2,p=1", enc, err)
	}
	// Set parameters are used (enginetest's cheap ones).
	cheap := enginetest.Start(t).Profiles.Hasher()
	if cheap.Params() != enginetest.TestPasswordParams {
		t.Fatalf("an engine under test hashes under %+v, want %+v", cheap.Params(), enginetest.TestPasswordParams)
	}
}

// login registers (once) and authenticates name on e, returning the status
// of the authentication.
func login(t *testing.T, url, name string, register bool) int {
	t.Helper()
	post := func(path string, body any) (*http.Response, map[string]any) {
		b, _ := json.Marshal(body)
		res, err := http.Post(url+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res, m
	}
	const pw = "Tr0ub4dor&3-correct-horse-battery"
	if register {
		res, m := post("/profile/register-profile", map[string]string{"username": name, "password": pw})
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("register: %d %v", res.StatusCode, m)
		}
		id, _ := m["commandId"].(string)
		for deadline := time.Now().Add(guard); ; time.Sleep(5 * time.Millisecond) {
			res, err := http.Get(url + "/utility/request-command-id-status/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var st struct {
				CommandStatus int `json:"command_status"`
			}
			json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if st.CommandStatus == 2 {
				break
			}
			if st.CommandStatus != 1 || time.Now().After(deadline) {
				t.Fatalf("register: command status %d", st.CommandStatus)
			}
		}
	}
	res, _ := post("/profile/authenticate", map[string]string{"username": name, "password": pw})
	return res.StatusCode
}

// A restart on the same data dir keeps the engine key (devices check it),
// the master key (layer-2 ciphertexts stay readable) and the database.
func TestRestartKeepsKeysAndData(t *testing.T) {
	dir := t.TempDir()
	e, masterID := startLogged(t, engine.Config{DataDir: dir})
	engineKey := e.EngineKey
	// The key files, without a KEK (with PRIVICORE_TEST_DATABASE=postgres
	// the keys are in the database and the logged id stands for them).
	fileMode := os.Getenv("PRIVICORE_TEST_DATABASE") == ""
	var master []byte
	if fileMode {
		var err error
		if master, err = os.ReadFile(filepath.Join(dir, "master.key")); err != nil {
			t.Fatal(err)
		}
	}
	if st := login(t, e.URL, "restarted", true); st != http.StatusOK {
		t.Fatalf("login before the restart: %d", st)
	}
	e.Stop()

	e, againID := startLogged(t, engine.Config{DataDir: dir})
	if e.EngineKey != engineKey {
		t.Fatal("the engine key changed across a restart")
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "master.key")); fileMode && !bytes.Equal(again, master) {
		t.Fatal("the master key changed across a restart")
	}
	if againID != masterID {
		t.Fatal("the master key id changed across a restart")
	}
	if st := login(t, e.URL, "restarted", false); st != http.StatusOK {
		t.Fatalf("login after the restart: %d, want 200 (the profile kept)", st)
	}

	// Another data dir is another engine: other keys.
	other := enginetest.Start(t)
	if other.EngineKey == engineKey {
		t.Fatal("two data dirs share an engine key")
	}
}

// Key files that do not hold a key stop the start with an error naming
// them; the engine does not overwrite them.
func TestEngineRefusesDamagedKeyFiles(t *testing.T) {
	for _, key := range []string{"engine.key", "master.key"} {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		path := filepath.Join(dir, key)
		if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(context.Background(), engine.Config{DataDir: dir, BusAddr: "127.0.0.1:0"})
		if err == nil {
			eng.Close()
			t.Fatalf("%s damaged: the engine started", key)
		}
		if !strings.Contains(err.Error(), strings.TrimSuffix(key, ".key")) {
			t.Errorf("%s damaged: %v, want an error naming it", key, err)
		}
		if b, _ := os.ReadFile(path); string(b) != "not a key\n" {
			t.Errorf("%s damaged: rewritten to %q", key, b)
		}
	}
}

// A listener address in use fails Listen with the address, for the API
// and for the WebSocket listener.
func TestListenNamesTheAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, c := range []engine.Config{{Addr: addr, WSAddr: "-"}, {Addr: "127.0.0.1:0", WSAddr: addr}} {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		c.DataDir = dir
		eng := newEngine(t, c)
		err := eng.Listen()
		if err == nil || !strings.Contains(err.Error(), "listen "+addr) {
			t.Fatalf("Listen with %s in use: %v, want an error naming it", addr, err)
		}
	}
}
