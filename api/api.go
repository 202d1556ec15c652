// Package api holds the JSON shapes of privicore's HTTP API (docs/api.md)
// that the engine writes and the client SDK (package client) reads, one
// file per area, so each shape is declared once. Instants are written as
// the spec shows them, UTC to the second with a numeric offset
// (privicore.TimeFormat, 2026-02-21T15:33:44+00:00); any RFC 3339 time
// reads back.
package api

import (
	"time"

	"github.com/privicore/privicore"
)

// wireTime is t as the API writes an instant.
func wireTime(t time.Time) string { return t.UTC().Format(privicore.TimeFormat) }
