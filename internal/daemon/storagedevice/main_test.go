package storagedevice

import (
	"testing"

	"github.com/privicore/privicore/internal/memtmp"
)

// TestMain keeps the tests' temporary files in memory (internal/memtmp).
func TestMain(m *testing.M) { memtmp.Main(m) }
