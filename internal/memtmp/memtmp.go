// Package memtmp keeps a test binary's temporary files in memory: its
// TestMain calls Use (or is Main), and t.TempDir, os.MkdirTemp("", …) and
// os.CreateTemp("", …) then make them under a fresh directory of the
// machine's memory file system (/dev/shm) when it has a writable one; so
// do the processes the tests start (TMPDIR is inherited).
//
// The tests create and remove thousands of files: engine databases,
// device packs, NATS stores, PostgreSQL's data directory and a database
// per test. On a disk file system that cost more CPU than the tests
// themselves (ext4's inode allocation scans the recently deleted inodes),
// and it made the README's `go test ./...` half again as slow. Nothing
// the tests assert depends on the medium: the crashes they cause are of
// processes, which leave the page cache, and so tmpfs, as it was.
package memtmp

import (
	"os"
	"testing"
)

// shm is the memory file system looked for.
const shm = "/dev/shm"

// Use points TMPDIR at a fresh directory under /dev/shm and returns what
// removes it and restores TMPDIR. Without a writable /dev/shm it changes
// nothing (the cleanup does nothing).
func Use() (cleanup func()) {
	dir, err := os.MkdirTemp(shm, "privicore-test-")
	if err != nil {
		return func() {}
	}
	// Traversable, as /tmp is, by a server the tests run as another user
	// (internal/pgtest runs PostgreSQL as nobody under root); what the
	// tests make inside is theirs (t.TempDir: 0700).
	os.Chmod(dir, 0o755)
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	return func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
		os.RemoveAll(dir)
	}
}

// Main is a TestMain that runs the tests with their temporary files in
// memory (Use) and exits with their status.
func Main(m *testing.M) {
	cleanup := Use()
	code := m.Run()
	cleanup()
	os.Exit(code)
}
