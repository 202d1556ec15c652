//go:build !unix

package engine

// fdLimit is unknown here: the connection cap falls back to fallbackMaxConns.
func fdLimit() uint64 { return 0 }
