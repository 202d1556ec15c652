// Package keyring holds the engine's own secrets: the engine key (the
// X25519 private key whose signed public key clients and devices see) and
// the master key (the 32-byte key of the layer-2 sealer that every stored
// payload is sealed under). Key handling lives here and nowhere else.
//
// The rules:
//
//   - Without a key-encryption key (KEK), the keys are the files engine.key
//     and master.key in the data dir (0600, in a 0700 dir), created on the
//     first start: single-engine SQLite mode.
//   - With a KEK (32 random bytes every replica is given, ReadKEKFile), the
//     keys live in the database, each sealed with AES-256-GCM under the KEK;
//     the associated data binds the key's name and the format version
//     ("privicore engine key v1\x00" + name), so a sealed key cannot be
//     passed off as another. No key is ever written in the clear: no key
//     file is created in this mode.
//   - The first replica to start creates the keys; replicas starting at once
//     agree, because a key is stored only if none of its name is (the
//     first writer wins) and every replica then uses what is stored, never
//     the key it generated itself.
//   - A replica whose KEK does not open the stored keys refuses to start
//     (ErrWrongKEK): it would otherwise serve under other keys.
//   - Without a KEK on a database that holds sealed keys, Open refuses
//     (ErrKEKRequired) rather than make key files of other keys.
//   - Moving an existing engine to a KEK: when the database holds no key yet
//     but the data dir has engine.key or master.key, those are sealed into
//     the database (so what was stored stays readable), and the log says the
//     files may be removed; they are not deleted.
package keyring

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/privicore/privicore/internal/keys"
)

// Names of the keys in the database, and of their files in the data dir.
const (
	EngineKeyName = "engine"
	MasterKeyName = "master"

	EngineKeyFile = "engine.key"
	MasterKeyFile = "master.key"
)

// KEKSize is the byte length of a key-encryption key.
const KEKSize = 32

// masterSize is the byte length of the master key.
const masterSize = 32

// adPrefix starts the associated data of every sealed key; the key's name
// follows. A new format gets a new version here.
const adPrefix = "privicore engine key v1\x00"

// ErrWrongKEK is returned by Open when the KEK does not open the keys
// stored in the database.
var ErrWrongKEK = errors.New("the KEK does not open the engine keys stored in the database: every replica needs the same --kek-file")

// ErrKEKRequired is returned by Open without a KEK when the database holds
// sealed keys: key files would be other keys, and what was stored
// unreadable.
var ErrKEKRequired = errors.New("the database keeps the engine keys sealed under a KEK: start the engine with the same --kek-file as before")

// Store keeps sealed keys. internal/sqlstore's DB implements it.
type Store interface {
	// AddSealedKey stores sealed under name unless a key of that name is
	// stored already, in which case it does nothing.
	AddSealedKey(ctx context.Context, name string, sealed []byte, createdAt time.Time) error
	// SealedKey returns the sealed key stored under name; found is false
	// when there is none.
	SealedKey(ctx context.Context, name string) (sealed []byte, found bool, err error)
}

// Keys are the engine's secrets.
type Keys struct {
	Engine *ecdh.PrivateKey // the engine key
	Master []byte           // the master key, 32 bytes
}

// MasterID is a fingerprint of the master key that is safe to log: two
// engines showing the same MasterID read each other's stored payloads.
func (k Keys) MasterID() string {
	sum := sha256.Sum256(append([]byte("privicore master key id\x00"), k.Master...))
	return hex.EncodeToString(sum[:8])
}

// Open returns the engine's keys. With kek nil they are the data dir's key
// files (created when missing; store, if not nil, must hold no sealed key);
// with a KEK they are the keys sealed in store
// (created, or imported from the data dir's files, when missing), and an
// error wrapping ErrWrongKEK when kek does not open them. logger says what
// was created or imported.
func Open(ctx context.Context, store Store, kek []byte, dataDir string, logger *slog.Logger) (Keys, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if kek == nil {
		if store != nil {
			if _, found, err := store.SealedKey(ctx, EngineKeyName); err != nil {
				return Keys{}, err
			} else if found {
				return Keys{}, ErrKEKRequired
			}
		}
		return openFiles(dataDir, logger)
	}
	if len(kek) != KEKSize {
		return Keys{}, fmt.Errorf("keyring: a KEK is %d bytes, got %d", KEKSize, len(kek))
	}
	enginePath := filepath.Join(dataDir, EngineKeyFile)
	engineRaw, err := openSealed(ctx, store, kek, EngineKeyName, enginePath, logger, func() ([]byte, error) {
		priv, err := keys.ReadPrivateKeyFile(enginePath)
		if err != nil {
			return nil, err
		}
		return priv.Bytes(), nil
	}, func() ([]byte, error) {
		priv, err := keys.Generate()
		if err != nil {
			return nil, err
		}
		return priv.Bytes(), nil
	})
	if err != nil {
		return Keys{}, fmt.Errorf("engine key: %w", err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(engineRaw)
	if err != nil {
		return Keys{}, fmt.Errorf("engine key: the stored key is not an X25519 key: %w", err)
	}
	masterPath := filepath.Join(dataDir, MasterKeyFile)
	master, err := openSealed(ctx, store, kek, MasterKeyName, masterPath, logger, func() ([]byte, error) {
		return keys.ReadSecretFile(masterPath, masterSize)
	}, func() ([]byte, error) {
		b := make([]byte, masterSize)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return Keys{}, fmt.Errorf("master key: %w", err)
	}
	if len(master) != masterSize {
		return Keys{}, fmt.Errorf("master key: the stored key is %d bytes, want %d", len(master), masterSize)
	}
	return Keys{Engine: priv, Master: master}, nil
}

// openFiles is Open without a KEK: the data dir's files.
func openFiles(dataDir string, logger *slog.Logger) (Keys, error) {
	path := filepath.Join(dataDir, EngineKeyFile)
	priv, created, err := keys.LoadOrCreatePrivateKeyFile(path)
	if err != nil {
		return Keys{}, fmt.Errorf("engine key: %w", err)
	}
	if created {
		logger.Info("created the engine key", "file", path)
	}
	master, err := keys.LoadOrCreateSecretFile(filepath.Join(dataDir, MasterKeyFile), masterSize)
	if err != nil {
		return Keys{}, fmt.Errorf("master key: %w", err)
	}
	return Keys{Engine: priv, Master: master}, nil
}

// openSealed returns the key stored under name, unsealed. When none is
// stored, it stores one first: the one readFile reads from path if that
// file exists (an engine moving to a KEK), else a fresh one from generate;
// then it reads back what is stored, which another replica may have
// written first.
func openSealed(ctx context.Context, store Store, kek []byte, name, path string, logger *slog.Logger,
	readFile, generate func() ([]byte, error)) ([]byte, error) {
	sealed, found, err := store.SealedKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if !found {
		plain, imported, err := initial(path, readFile, generate)
		if err != nil {
			return nil, err
		}
		mine, err := keys.SealAD(kek, plain, ad(name))
		if err != nil {
			return nil, err
		}
		if err := store.AddSealedKey(ctx, name, mine, time.Now()); err != nil {
			return nil, err
		}
		if sealed, found, err = store.SealedKey(ctx, name); err != nil {
			return nil, err
		}
		if !found {
			return nil, errors.New("keyring: the key stored a moment ago is gone")
		}
		stored, err := keys.OpenAD(kek, sealed, ad(name))
		switch {
		case err != nil:
			// Another replica stored it first, under another KEK.
		case subtle.ConstantTimeCompare(stored, plain) != 1:
			logger.Info("another replica created the key first; using it", "key", name)
		case imported:
			logger.Info("sealed the key file into the database; the file is no longer read and may be removed", "key", name, "file", path)
		default:
			logger.Info("created the key in the database, sealed under the KEK", "key", name)
		}
	}
	plain, err := keys.OpenAD(kek, sealed, ad(name))
	if err != nil {
		return nil, ErrWrongKEK
	}
	if file, err := readFile(); err == nil && subtle.ConstantTimeCompare(file, plain) != 1 {
		logger.Warn("the data dir's key file differs from the key in the database; the database's is used", "key", name, "file", path)
	}
	return plain, nil
}

// initial is the key to store when the database has none: the file's, if
// it exists, else a generated one.
func initial(path string, readFile, generate func() ([]byte, error)) (plain []byte, imported bool, err error) {
	plain, err = readFile()
	if err == nil {
		return plain, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("reading %s to import it: %w", path, err)
	}
	plain, err = generate()
	return plain, false, err
}

// ad is the associated data a key named name is sealed with: the format
// version and the name, so a sealed key cannot be passed off as another.
func ad(name string) []byte { return []byte(adPrefix + name) }
