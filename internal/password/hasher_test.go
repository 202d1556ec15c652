package password

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestHasherBoundsConcurrency(t *testing.T) {
	h := NewHasher(2, Params{})
	enc, _ := HashWith("pw", Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 16})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := h.Verify(context.Background(), enc, "pw"); !ok || err != nil {
				t.Errorf("verify: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if h.Peak() < 1 || h.Peak() > 2 || h.Runs() != 16 {
		t.Fatalf("peak %d, runs %d; want at most 2 at once, 16 runs", h.Peak(), h.Runs())
	}
}

func TestHasherGivesUpWithItsContext(t *testing.T) {
	h := NewHasher(1, Params{})
	h.slots <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := h.Verify(ctx, dummyHash, "pw"); ok || err == nil {
		t.Fatalf("verify without a slot: %v %v", ok, err)
	}
	if _, err := h.Hash(ctx, "pw"); err == nil {
		t.Fatal("hash without a slot succeeded")
	}
	if err := h.VerifyDummy(ctx, "pw"); err == nil {
		t.Fatal("dummy verify without a slot succeeded")
	}
	if NewHasher(0, Params{}).Size() < 1 {
		t.Fatal("a machine-sized hasher has no slot")
	}
}

// A Hasher hashes new passwords under its parameters (zero: DefaultParams),
// and its dummy verification costs what a real one under them costs.
func TestHasherHashesUnderItsParams(t *testing.T) {
	cheap := Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 16}
	for _, c := range []struct {
		params Params
		prefix string
	}{
		{Params{}, "$argon2id$v=19$m=19456,t=2,p=1$"},
		{DefaultParams, "$argon2id$v=19$m=19456,t=2,p=1$"},
		{cheap, "$argon2id$v=19$m=64,t=1,p=1$"},
	} {
		h := NewHasher(1, c.params)
		enc, err := h.Hash(context.Background(), "pw")
		if err != nil || !strings.HasPrefix(enc, c.prefix) {
			t.Errorf("params %+v: hash %q %v, want prefix %s", c.params, enc, err, c.prefix)
		}
		if ok, err := h.Verify(context.Background(), enc, "pw"); !ok || err != nil {
			t.Errorf("params %+v: verify %v %v", c.params, ok, err)
		}
		if !strings.HasPrefix(h.dummy, c.prefix) {
			t.Errorf("params %+v: dummy hash %q, want prefix %s", c.params, h.dummy, c.prefix)
		}
	}
}
