package engine

import (
	"log/slog"
	"testing"

	"github.com/privicore/privicore/internal/clientaddr"
)

// The connection caps leave descriptors to the rest of the engine, and one
// address never gets all of them.
func TestDefaultConnectionCaps(t *testing.T) {
	for _, c := range []struct {
		fds            uint64
		total, perAddr int
	}{
		{fds: 600, total: 450, perAddr: 225},
		{fds: 1024, total: 768, perAddr: 256},
		{fds: 256, total: 128, perAddr: 64},
		{fds: 100, total: 1, perAddr: 1},
		{fds: 0, total: fallbackMaxConns, perAddr: DefaultMaxConnsPerAddr},
		{fds: 1 << 20, total: 1<<20 - 1<<18, perAddr: DefaultMaxConnsPerAddr},
	} {
		total := defaultMaxConns(c.fds)
		l := Limits{MaxConns: total}.resolved()
		if total != c.total || l.MaxConns != c.total || l.MaxConnsPerAddr != c.perAddr {
			t.Errorf("%d fds: caps %d (resolved %d), per address %d; want %d, %d", c.fds, total, l.MaxConns, l.MaxConnsPerAddr, c.total, c.perAddr)
		}
	}
	if l := (Limits{MaxConns: -1, MaxConnsPerAddr: -1}).resolved(); l.MaxConns != 0 || l.MaxConnsPerAddr != 0 {
		t.Errorf("caps turned off resolve to %d, %d; want none (0)", l.MaxConns, l.MaxConnsPerAddr)
	}
	if l := (Limits{MaxConns: 10, MaxConnsPerAddr: 9}).resolved(); l.MaxConnsPerAddr != 9 {
		t.Errorf("an explicit per-address cap became %d", l.MaxConnsPerAddr)
	}
}

// A trusted proxy's connections are not capped per address (its clients
// share its address), but they count toward the total cap.
func TestTrustedProxyIsNotCappedPerAddress(t *testing.T) {
	trusted, err := clientaddr.New([]string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(5, 2, trusted, slog.New(slog.DiscardHandler))
	for i := range 2 {
		if a := l.admit("192.0.2.1"); a != "" {
			t.Fatalf("connection %d of an address refused", i)
		}
	}
	if a := l.admit("192.0.2.1"); a != refusedPerAddr {
		t.Fatalf("an address's third connection: %q, want the per-address refusal", a)
	}
	for i := range 3 {
		if a := l.admit("10.0.0.1"); a != "" {
			t.Fatalf("the proxy's connection %d refused: %q", i, a)
		}
	}
	if a := l.admit("10.0.0.1"); a != refusedTotal {
		t.Fatalf("over the total: %q, want the total cap's refusal", a)
	}
}
