package memtmp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/memtmp"
)

// Use moves the temporary files under a fresh directory of /dev/shm, which
// its cleanup removes, restoring TMPDIR; without /dev/shm nothing moves.
func TestUseMovesTempFilesIntoMemoryAndBack(t *testing.T) {
	before := os.Getenv("TMPDIR")
	restore := memtmp.Use()
	dir := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		restore()
		if os.TempDir() != dir {
			t.Fatal("without /dev/shm, Use changed the temp dir")
		}
		t.Skip("no /dev/shm here")
	}
	if !strings.HasPrefix(dir, "/dev/shm/privicore-test-") {
		t.Fatalf("temp dir under Use: %s", dir)
	}
	f, err := os.CreateTemp("", "x")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if filepath.Dir(f.Name()) != dir {
		t.Fatalf("a temp file went to %s, not %s", f.Name(), dir)
	}
	restore()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the directory outlived the cleanup: %v", err)
	}
	if os.Getenv("TMPDIR") != before {
		t.Fatalf("TMPDIR after the cleanup: %q, want %q", os.Getenv("TMPDIR"), before)
	}
}
