package httpapi_test

import (
	"os"
	"testing"

	"github.com/privicore/privicore/internal/pgtest"
)

// TestMain stops the test PostgreSQL (started only with
// PRIVICORE_TEST_DATABASE=postgres) after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
