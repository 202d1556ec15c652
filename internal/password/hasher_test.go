package password

import (
	"context"
	"sync"
	"testing"
)

func TestHasherBoundsConcurrency(t *testing.T) {
	h := NewHasher(2)
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
	h := NewHasher(1)
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
	if NewHasher(0).Size() < 1 {
		t.Fatal("a machine-sized hasher has no slot")
	}
}
