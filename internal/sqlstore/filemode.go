package sqlstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// dbFileMode is the mode of the SQLite files: the database holds every
// profile's tokens (hashed), keys and wrapped data keys; no one else may
// read it.
const dbFileMode = 0o600

// sqliteFiles are the database file and the two SQLite keeps beside it in
// WAL mode.
func sqliteFiles(path string) []string { return []string{path, path + "-wal", path + "-shm"} }

// prepareSQLiteFile creates the database file with dbFileMode before
// SQLite opens it (SQLite would create it 0644 less the umask, and its -wal
// and -shm files take the database file's mode), and narrows files an
// older version created wider to dbFileMode: the engine owns them.
func prepareSQLiteFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, dbFileMode)
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	return narrowSQLiteFiles(path)
}

// narrowSQLiteFiles sets dbFileMode on each of the database's files that
// exists with a wider mode.
func narrowSQLiteFiles(path string) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix modes
	}
	for _, name := range sqliteFiles(path) {
		st, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("database file: %w", err)
		}
		if st.Mode().Perm()&^dbFileMode != 0 {
			if err := os.Chmod(name, dbFileMode); err != nil {
				return fmt.Errorf("database file %s is mode %04o and cannot be narrowed to %04o: %w", name, st.Mode().Perm(), dbFileMode, err)
			}
		}
	}
	return nil
}
