package profile_test

import (
	"testing"

	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/profile/profiletest"
)

// rig is a profile service over a real SQLite store and a real command
// processor (outcomes published nowhere: no socket listens).
type rig = profiletest.Rig

func newRig(t *testing.T) *rig { return profiletest.New(t, nil) }

const pw = profiletest.Password

var (
	sub        = commandtest.Sub
	wantCode   = profiletest.WantCode
	wantReason = profiletest.WantReason
	wantField  = profiletest.WantField
)
