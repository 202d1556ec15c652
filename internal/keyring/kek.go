package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/privicore/privicore/internal/keys"
)

// A KEK file holds KEKSize random bytes in standard base64 on one line. It
// is the operator's to keep (and to give every replica); it must be
// readable by its owner alone.

// NewKEK returns KEKSize random bytes: a new KEK.
func NewKEK() ([]byte, error) {
	kek := make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		return nil, err
	}
	return kek, nil
}

// GenerateKEKFile writes a new KEK to path with mode 0600. It refuses to
// overwrite an existing file: that KEK may be the one sealing a database's
// keys.
func GenerateKEKFile(path string) error {
	kek, err := NewKEK()
	if err != nil {
		return err
	}
	err = keys.WriteSecretFile(path, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"))
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists already; a KEK file is never overwritten (it may be the one sealing a database's keys): choose another path", path)
	}
	return err
}

// ReadKEKFile reads the KEK at path. A file that its group or others may
// read or write is refused, as is one not holding KEKSize bytes in base64.
func ReadKEKFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("KEK file: %s is a directory", path)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("KEK file: other users can read or write %s (mode %04o); fix it with: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	kek, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(kek) != KEKSize {
		return nil, fmt.Errorf("KEK file: %s does not hold %d bytes in base64; make one with: privicore kek generate FILE", path, KEKSize)
	}
	return kek, nil
}
