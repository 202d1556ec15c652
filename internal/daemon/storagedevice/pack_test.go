package storagedevice

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testAEAD(t testing.TB) cipher.AEAD {
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func openTestPacks(t testing.TB, dir string) *packs {
	t.Helper()
	s, err := openPacks(dir, testAEAD(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(id string, data string) change { return change{id: id, data: []byte(data)} }
func del(id string) change              { return change{id: id, del: true} }

func mustCommit(t testing.TB, s *packs, ops ...change) {
	t.Helper()
	if err := s.commit(ops); err != nil {
		t.Fatal(err)
	}
}

// expectBlobs checks that s holds exactly want.
func expectBlobs(t *testing.T, s *packs, want map[string]string) {
	t.Helper()
	if got := len(s.ids()); got != len(want) {
		t.Fatalf("holds %d blobs (%v), want %d", got, s.ids(), len(want))
	}
	for id, w := range want {
		data, ok, err := s.get(id)
		if !ok || err != nil || string(data) != w {
			t.Fatalf("%s: %q ok=%v err=%v, want %q", id, data, ok, err, w)
		}
	}
}

func packFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+packSuffix))
	return files
}

func TestPacksOneFilePerCommitAndReload(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	mustCommit(t, s, put("a", "alpha"), put("b", "beta"), put("c", "gamma"))
	mustCommit(t, s, put("d", ""), put("e", "epsilon"))
	want := map[string]string{"a": "alpha", "b": "beta", "c": "gamma", "d": "", "e": "epsilon"}
	expectBlobs(t, s, want)
	if n := len(packFiles(t, dir)); n != 2 {
		t.Fatalf("%d pack files for two commits", n)
	}
	// The records are sealed: no plaintext in the files.
	for _, f := range packFiles(t, dir) {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, []byte("alpha")) || bytes.Contains(raw, []byte("epsilon")) {
			t.Fatal("a pack holds a blob in the clear")
		}
	}
	expectBlobs(t, openTestPacks(t, dir), want)
	if _, ok, _ := s.get("zzz"); ok {
		t.Fatal("an unknown id was found")
	}
}

func TestPacksRemoveRewritesAndNothingComesBack(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	mustCommit(t, s, put("a", "alpha"), put("b", "beta"), put("c", "gamma"))
	path, _, _, _ := s.locate("c")
	mustCommit(t, s, del("a"))
	want := map[string]string{"b": "beta", "c": "gamma"}
	expectBlobs(t, s, want) // offsets moved with the rewrite
	// The removed blob's sealed bytes left the disk: a restart cannot find it.
	expectBlobs(t, openTestPacks(t, dir), want)
	if _, off, n, _ := s.locate("c"); off+n > fileSize(t, path) {
		t.Fatal("the rewritten pack is shorter than its index says")
	}
	mustCommit(t, s, del("b"), del("c"))
	expectBlobs(t, s, map[string]string{})
	if files := packFiles(t, dir); len(files) != 0 {
		t.Fatalf("empty packs left: %v", files)
	}
	// Removing what is not there is fine.
	mustCommit(t, s, del("nothing"))
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestPacksReplacedCopyDoesNotComeBack(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	mustCommit(t, s, put("x", "v1"), put("y", "other"))
	mustCommit(t, s, put("x", "v2"))
	expectBlobs(t, s, map[string]string{"x": "v2", "y": "other"})
	mustCommit(t, s, del("x"))
	// The first pack was rewritten without v1 when v2 arrived.
	expectBlobs(t, openTestPacks(t, dir), map[string]string{"y": "other"})
}

func TestPacksOrderInsideOneCommit(t *testing.T) {
	s := openTestPacks(t, t.TempDir())
	mustCommit(t, s, put("a", "1"), del("a"), del("b"), put("b", "2"), put("c", "3"), put("c", "4"))
	expectBlobs(t, s, map[string]string{"b": "2", "c": "4"})
}

func TestPacksLoadIgnoresTornPacksAndTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	mustCommit(t, s, put("a", "alpha"))
	mustCommit(t, s, put("b", "beta"))
	// A pack whose write did not finish (no valid footer), and a temp file.
	path, _, _, _ := s.locate("b")
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, raw[:len(raw)-3], 0o600)
	tmp := filepath.Join(dir, ".tmp-123")
	os.WriteFile(tmp, []byte("partial"), 0o600)
	// A flipped footer byte fails the checksum.
	w := &packWriter{}
	sealed, _ := s.seal("c", []byte("gamma"))
	w.add("c", sealed)
	bad := w.bytes()
	bad[len(bad)-20] ^= 1
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("%016x%s", 99, packSuffix)), bad, 0o600)

	r := openTestPacks(t, dir)
	expectBlobs(t, r, map[string]string{"a": "alpha"})
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("temp file left after load")
	}
	// New packs never reuse a number seen on disk.
	mustCommit(t, r, put("d", "delta"))
	if p, _, _, _ := r.locate("d"); filepath.Base(p) <= fmt.Sprintf("%016x%s", 99, packSuffix) {
		t.Fatalf("new pack %s reuses an old number", p)
	}
}

func TestPacksCrashBetweenReplaceAndRewrite(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	mustCommit(t, s, put("x", "v1"), put("y", "why"))
	// A later pack holding x, as if the device stopped before rewriting
	// the first pack.
	w := &packWriter{}
	sealed, _ := s.seal("x", []byte("v2"))
	w.add("x", sealed)
	if err := writeFile(dir, (&pack{seq: 50}).name(dir), w.bytes(), true); err != nil {
		t.Fatal(err)
	}
	r := openTestPacks(t, dir)
	expectBlobs(t, r, map[string]string{"x": "v2", "y": "why"})
	// The load finished the rewrite: removing x now leaves no copy.
	mustCommit(t, r, del("x"))
	expectBlobs(t, openTestPacks(t, dir), map[string]string{"y": "why"})
}

func TestPacksDamagedRecordFailsAuthentication(t *testing.T) {
	s := openTestPacks(t, t.TempDir())
	mustCommit(t, s, put("a", "alpha"), put("b", "beta"))
	path, off, n, _ := s.locate("a")
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte{1}, int(n)), off)
	f.Close()
	if _, ok, err := s.get("a"); !ok || err == nil {
		t.Fatal("a damaged copy was returned")
	}
	if data, _, err := s.get("b"); err != nil || string(data) != "beta" {
		t.Fatal("a neighbour of the damaged record is unreadable")
	}
}

func TestPacksLargeCommitIsSplit(t *testing.T) {
	dir := t.TempDir()
	s := openTestPacks(t, dir)
	big := string(bytes.Repeat([]byte{'z'}, 3<<20))
	mustCommit(t, s, put("a", big), put("b", big), put("c", big), put("d", "small"))
	if n := len(packFiles(t, dir)); n != 2 {
		t.Fatalf("%d packs for 9 MiB, want 2", n)
	}
	expectBlobs(t, openTestPacks(t, dir), map[string]string{"a": big, "b": big, "c": big, "d": "small"})
}

// Readers never see a record move under them while packs are rewritten.
func TestPacksReadsDuringRewrites(t *testing.T) {
	s := openTestPacks(t, t.TempDir())
	var ops []change
	for i := range 200 {
		ops = append(ops, put(fmt.Sprint("keep", i), fmt.Sprint("value", i)))
	}
	mustCommit(t, s, ops...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprint("keep", i%200)
				if data, ok, err := s.get(id); !ok || err != nil || string(data) != fmt.Sprint("value", i%200) {
					t.Errorf("%s: %q %v %v", id, data, ok, err)
					return
				}
			}
		}()
	}
	for i := range 100 {
		mustCommit(t, s, put(fmt.Sprint("tmp", i), "x"), del(fmt.Sprint("tmp", i-1)))
		mustCommit(t, s, put(fmt.Sprint("keep", i%200), fmt.Sprint("value", i%200)))
	}
	close(stop)
	wg.Wait()
}

func TestBlobIDsCannotBePaths(t *testing.T) {
	for _, id := range []string{"01JDQ6ZJ8V9K3M2N4P5Q6R7S8T", "a", "a_b-C9", strings.Repeat("x", 64)} {
		if !validBlobID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "..", "../x", "a/b", `a\b`, "a.b", "a b", "é", "a\x00", strings.Repeat("x", 65)} {
		if validBlobID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}
