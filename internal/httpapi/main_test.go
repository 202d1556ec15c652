package httpapi_test

import (
	"testing"

	"github.com/privicore/privicore/internal/pgtest"
)

// TestMain stops the test PostgreSQL (started only with
// PRIVICORE_TEST_DATABASE=postgres) after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }
