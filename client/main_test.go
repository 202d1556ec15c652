package client_test

import (
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// TestMain overlaps the waiting tests (vote deadlines, the safety-net
// poll) four at a time.
func TestMain(m *testing.M) {
	enginetest.OverlapWaits(4)
	m.Run()
}
