package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// Whatever the umask (here none), an engine's data dir, key files,
// database files and JetStream directory are the owner's alone; a
// JetStream directory left wider (by an older version) is narrowed.
func TestDataDirFilesAreOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data") // created by the engine
	e := enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	e.Stop()
	if err := os.Chmod(filepath.Join(dir, "bus"), 0o755); err != nil {
		t.Fatal(err)
	}
	e = enginetest.Start(t, func(c *engine.Config) { c.DataDir = dir })
	e.Stop() // the database files stay; -wal and -shm go with a clean close
	want := map[string]os.FileMode{".": 0o700, "engine.key": 0o600, "master.key": 0o600, "bus": 0o700, "bus/jetstream": 0o700}
	if os.Getenv("PRIVICORE_TEST_DATABASE") == "" {
		want["privicore.db"] = 0o600
	} else { // the keys are in the database, sealed under a KEK (keyring)
		delete(want, "engine.key")
		delete(want, "master.key")
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", name, st.Mode().Perm(), mode)
		}
	}
}

// The engine refuses a data dir or key file other users can read or
// write, with an error that says how to fix it.
func TestEngineRefusesSharedDataDirAndKeys(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	start := func(dir string) error {
		eng, err := engine.New(context.Background(), engine.Config{DataDir: dir, BusAddr: "127.0.0.1:0"})
		if err == nil {
			eng.Close()
		}
		return err
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := start(dir); err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("a data dir others can read: %v, want the error with chmod 700 %s", err, dir)
	}
	os.Chmod(dir, 0o700)
	if err := start(dir); err != nil {
		t.Fatalf("after chmod 700: %v", err)
	}
	for _, key := range []string{"engine.key", "master.key"} {
		path := filepath.Join(dir, key)
		os.Chmod(path, 0o644)
		if err := start(dir); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("%s readable by others: %v, want the error with chmod 600 %s", key, err, path)
		}
		os.Chmod(path, 0o600)
	}
	os.Chmod(dir, 0o711) // others may reach files by name, not list or change the directory
	if err := start(dir); err != nil {
		t.Fatalf("a data dir of mode 0711: %v", err)
	}
}
