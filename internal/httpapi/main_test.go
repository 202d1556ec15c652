package httpapi_test

import (
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/pgtest"
)

// TestMain overlaps the waiting tests (the cluster tests and those marked
// parallel) eight at a time, and stops the test PostgreSQL after the tests.
func TestMain(m *testing.M) {
	enginetest.OverlapWaits(8)
	pgtest.Main(m)
}
