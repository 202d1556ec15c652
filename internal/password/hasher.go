package password

import (
	"context"
	"runtime"
	"sync/atomic"
)

// Hasher runs argon2id at most a fixed number of times at once. Each run
// takes its parameters' Memory (19 MiB under DefaultParams), so the bound
// keeps memory flat however many requests arrive: the others wait their
// turn (or give up when their context ends). Every path that hashes or
// verifies a password goes through one Hasher.
type Hasher struct {
	params   Params
	dummy    string // a hash under params, verified against for unknown usernames
	slots    chan struct{}
	inFlight atomic.Int64
	peak     atomic.Int64
	runs     atomic.Int64
}

// NewHasher returns a Hasher for n concurrent hashes that hashes new
// passwords under p; n <= 0 sizes it to the machine (runtime.GOMAXPROCS:
// argon2id is CPU-bound, more at once only costs memory), a zero p is
// DefaultParams. Verify reads the parameters from each hash, so hashes made
// under other parameters still verify.
func NewHasher(n int, p Params) *Hasher {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{params: p, dummy: dummyHash, slots: make(chan struct{}, n)}
	if p == (Params{}) {
		h.params = DefaultParams
	} else if p != DefaultParams {
		h.dummy, _ = HashWith("privicore-dummy-password-for-timing", p)
	}
	return h
}

// Params are the parameters new hashes are made under.
func (h *Hasher) Params() Params { return h.params }

// Size is the number of hashes that may run at once.
func (h *Hasher) Size() int { return cap(h.slots) }

// Peak is the most hashes that ran at once so far.
func (h *Hasher) Peak() int { return int(h.peak.Load()) }

// Runs is the number of hashes run so far.
func (h *Hasher) Runs() int64 { return h.runs.Load() }

// run runs f in a slot, waiting for one until ctx ends.
func (h *Hasher) run(ctx context.Context, f func()) error {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.runs.Add(1)
	n := h.inFlight.Add(1)
	for {
		if p := h.peak.Load(); n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer func() {
		h.inFlight.Add(-1)
		<-h.slots
	}()
	f()
	return nil
}

// Hash is HashWith under the Hasher's parameters, in a slot.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	var out string
	var err error
	if rerr := h.run(ctx, func() { out, err = HashWith(pw, h.params) }); rerr != nil {
		return "", rerr
	}
	return out, err
}

// Verify is the package's Verify in a slot. A context that ends while
// waiting is an error, never a match.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (bool, error) {
	var ok bool
	var err error
	if rerr := h.run(ctx, func() { ok, err = Verify(encoded, pw) }); rerr != nil {
		return false, rerr
	}
	return ok, err
}

// VerifyDummy verifies pw against a hash under the Hasher's parameters, in
// a slot: an unknown username costs the same work and waits in the same
// queue as a known one.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	return h.run(ctx, func() { _, _ = Verify(h.dummy, pw) })
}
