package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/privicore/privicore/internal/keyring"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestMain stops the test PostgreSQL after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// database is where one test's replicas meet: a DSN several handles open.
type database struct{ dsn string }

// open opens a new handle on the database, closed when the test ends.
func (d database) open(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// onBoth runs fn on a fresh SQLite database and on a fresh PostgreSQL one
// (skipped when no PostgreSQL is installed, unless PRIVICORE_REQUIRE_POSTGRES).
func onBoth(t *testing.T, fn func(t *testing.T, d database)) {
	pgtest.EachDialect(t, func(t *testing.T, dsn string) { fn(t, database{dsn}) })
}

func newKEK(t *testing.T) []byte {
	t.Helper()
	k, err := keyring.NewKEK()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dataDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	os.Chmod(d, 0o700)
	return d
}

func openKeys(t *testing.T, db *sqlstore.DB, kek []byte, dir string) keyring.Keys {
	t.Helper()
	k, err := keyring.Open(context.Background(), db, kek, dir, nil)
	if err != nil {
		t.Fatalf("keyring.Open: %v", err)
	}
	return k
}

func sameKeys(a, b keyring.Keys) bool {
	return bytes.Equal(a.Engine.Bytes(), b.Engine.Bytes()) && bytes.Equal(a.Master, b.Master)
}

// noKeyFiles fails the test if dir holds engine.key or master.key.
func noKeyFiles(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{keyring.EngineKeyFile, keyring.MasterKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in the data dir in KEK mode (stat: %v)", name, err)
		}
	}
}

// The first replica creates the keys; another replica, with its own data
// dir and the same KEK, unseals the same ones. Neither writes a key file.
func TestCreateThenUnseal(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		kek := newKEK(t)
		dirA, dirB := dataDir(t), dataDir(t)
		a := openKeys(t, d.open(t), kek, dirA)
		if a.Engine == nil || len(a.Master) != 32 {
			t.Fatalf("keys: %+v", a)
		}
		b := openKeys(t, d.open(t), kek, dirB)
		if !sameKeys(a, b) {
			t.Fatal("the second replica opened other keys than the first created")
		}
		again := openKeys(t, d.open(t), kek, dirA)
		if !sameKeys(a, again) {
			t.Fatal("a restart opened other keys")
		}
		noKeyFiles(t, dirA)
		noKeyFiles(t, dirB)
	})
}

// A replica given another KEK refuses to start, saying what to fix.
func TestWrongKEKRefused(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		openKeys(t, d.open(t), newKEK(t), dataDir(t))
		dir := dataDir(t)
		_, err := keyring.Open(context.Background(), d.open(t), newKEK(t), dir, nil)
		if !errors.Is(err, keyring.ErrWrongKEK) {
			t.Fatalf("another KEK: %v, want ErrWrongKEK", err)
		}
		if !strings.Contains(err.Error(), "every replica needs the same --kek-file") {
			t.Errorf("the error does not say how to fix it: %v", err)
		}
		noKeyFiles(t, dir)
	})
}

// Replicas starting at once on an empty database agree on one pair of keys:
// whichever stored first, every one uses what is stored.
func TestConcurrentFirstOpensAgree(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		const n = 4
		kek := newKEK(t)
		dbs := make([]*sqlstore.DB, n)
		dirs := make([]string, n)
		for i := range dbs {
			dbs[i], dirs[i] = d.open(t), dataDir(t)
		}
		got := make([]keyring.Keys, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range dbs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				got[i], errs[i] = keyring.Open(context.Background(), dbs[i], kek, dirs[i], nil)
			}(i)
		}
		close(start)
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("replica %d: %v", i, errs[i])
			}
			if !sameKeys(got[0], got[i]) {
				t.Fatalf("replica %d opened other keys than replica 0", i)
			}
		}
		if later := openKeys(t, d.open(t), kek, dataDir(t)); !sameKeys(got[0], later) {
			t.Fatal("the stored keys are not the ones the replicas use")
		}
	})
}

// An engine that ran with key files moves to a KEK: its files' keys are
// sealed into the database (what it stored stays readable), and the files
// are left in place.
func TestImportsExistingKeyFiles(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		dir := dataDir(t)
		before, err := keyring.Open(context.Background(), nil, nil, dir, nil) // file mode
		if err != nil {
			t.Fatal(err)
		}
		kek := newKEK(t)
		after := openKeys(t, d.open(t), kek, dir)
		if !sameKeys(before, after) {
			t.Fatal("the keys in the database are not the data dir's")
		}
		for _, name := range []string{keyring.EngineKeyFile, keyring.MasterKeyFile} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("%s was removed: %v", name, err)
			}
		}
		// Another replica, without the files, opens the imported keys.
		other := dataDir(t)
		if k := openKeys(t, d.open(t), kek, other); !sameKeys(before, k) {
			t.Fatal("a replica without the files opened other keys")
		}
		noKeyFiles(t, other)
	})
}

// Without a KEK the keys are the data dir's files, as before the keyring:
// created on the first start, read on the next.
func TestFileModeWithoutKEK(t *testing.T) {
	dir := dataDir(t)
	a, err := keyring.Open(context.Background(), nil, nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ReadPrivateKeyFile(filepath.Join(dir, keyring.EngineKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	master, err := keys.ReadSecretFile(filepath.Join(dir, keyring.MasterKeyFile), 32)
	if err != nil {
		t.Fatal(err)
	}
	if !sameKeys(a, keyring.Keys{Engine: priv, Master: master}) {
		t.Fatal("the keys are not the files'")
	}
	b, err := keyring.Open(context.Background(), nil, nil, dir, nil)
	if err != nil || !sameKeys(a, b) {
		t.Fatalf("a restart opened other keys (%v)", err)
	}
}

// What the database holds is sealed: neither key appears in it in any
// encoding, and a sealed key does not open under another key's name.
func TestStoredKeysAreSealed(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		db := d.open(t)
		kek := newKEK(t)
		k := openKeys(t, db, kek, dataDir(t))
		rows, err := db.SQL().Query(`SELECT name, sealed FROM engine_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var all []byte
		names := 0
		for rows.Next() {
			var name, sealed string
			if err := rows.Scan(&name, &sealed); err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(sealed)
			if err != nil {
				t.Fatal(err)
			}
			all = append(append(all, sealed...), raw...)
			names++
		}
		if names != 2 {
			t.Fatalf("%d keys stored, want 2", names)
		}
		for _, secret := range [][]byte{k.Engine.Bytes(), k.Master} {
			for _, form := range [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(base64.StdEncoding.EncodeToString(secret))} {
				if bytes.Contains(all, form) {
					t.Fatalf("a key is stored in the clear (%q)", form)
				}
			}
		}
		// The master key's sealed bytes put in the engine key's row do not
		// open as the engine key: the name is bound.
		if _, err := db.Exec(context.Background(), `UPDATE engine_keys SET sealed = (SELECT sealed FROM engine_keys WHERE name = 'master') WHERE name = 'engine'`); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Open(context.Background(), db, kek, dataDir(t), nil); !errors.Is(err, keyring.ErrWrongKEK) {
			t.Fatalf("the master key's sealed bytes opened as the engine key: %v", err)
		}
	})
}

// A database holding sealed keys is not opened without a KEK: key files
// would be other keys, and what was stored unreadable. No file is made.
func TestSealedKeysNeedTheKEK(t *testing.T) {
	onBoth(t, func(t *testing.T, d database) {
		openKeys(t, d.open(t), newKEK(t), dataDir(t))
		dir := dataDir(t)
		if _, err := keyring.Open(context.Background(), d.open(t), nil, dir, nil); !errors.Is(err, keyring.ErrKEKRequired) {
			t.Fatalf("no KEK on sealed keys: %v, want ErrKEKRequired", err)
		}
		noKeyFiles(t, dir)
	})
}
