package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestBurstRefusalAndRefill(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(rate.Every(10*time.Second), 3, 10)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _, _ := l.Allow(ctx, "u"); !ok {
			t.Fatalf("attempt %d refused within the burst", i)
		}
	}
	ok, wait, _ := l.Allow(ctx, "u")
	if ok || wait < 9*time.Second || wait > 10*time.Second {
		t.Fatalf("over the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _, _ := l.Allow(ctx, "other"); !ok {
		t.Fatal("keys are not independent")
	}
	now = now.Add(10 * time.Second)
	if ok, _, _ := l.Allow(ctx, "u"); !ok {
		t.Fatal("no refill after the interval")
	}
	if ok, _, _ := l.Allow(ctx, "u"); ok {
		t.Fatal("refilled more than one token")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l := New(1, 1, 50)
	for i := range 1000 {
		l.Allow(ctx, fmt.Sprint(i))
	}
	if l.Len() != 50 {
		t.Fatalf("%d keys held, want 50", l.Len())
	}
}

func TestConcurrentUse(t *testing.T) {
	l := New(rate.Every(time.Hour), 100, 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if ok, _, _ := l.Allow(ctx, "shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Allow(ctx, fmt.Sprint(g))
			}
		}()
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("%d allowed, want exactly the burst of 100", allowed)
	}
}
