package client_test

import (
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/memtmp"
)

// TestMain overlaps the waiting tests (vote deadlines, the safety-net
// poll) four at a time, their temporary files in memory (internal/memtmp).
func TestMain(m *testing.M) {
	enginetest.OverlapWaits(4)
	memtmp.Main(m)
}
