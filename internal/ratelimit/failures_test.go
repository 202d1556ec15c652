package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testGuard is a guard with in-memory buckets and a clock the test moves;
// shared_test.go runs the tests again with the buckets in a database.
var testGuard = func(pair, user, addr int) (*FailureGuard, *time.Time) {
	now := time.Unix(1000, 0)
	g := NewFailureGuard(FailureQuotas{UserAddr: Quota{pair, 10 * time.Minute}, User: Quota{user, 10 * time.Minute},
		Addr: Quota{addr, 10 * time.Minute}}, 1000)
	g.now = func() time.Time { return now }
	return g, &now
}

// attempt admits one attempt and reports it as failed; it returns whether
// the password was checked.
func attempt(g *FailureGuard, user, addr string) bool {
	t, _, ok, _ := g.Admit(ctx, user, addr)
	if ok {
		t.Failed()
	}
	return ok
}

func TestSuccessesNeverCount(t *testing.T) {
	g, _ := testGuard(1, 1, 1)
	for i := range 1000 {
		tk, _, ok, _ := g.Admit(ctx, "u", "a")
		if !ok {
			t.Fatalf("success %d refused", i)
		}
		tk.Succeeded()
	}
}

func TestGuessesFromOneAndFromManyAddresses(t *testing.T) {
	g, _ := testGuard(5, 10, 50)
	checked := 0
	for range 10000 {
		if attempt(g, "victim", "a1") {
			checked++
		}
	}
	if checked != 5 {
		t.Fatalf("one address: %d checks, want 5", checked)
	}
	g, _ = testGuard(5, 10, 50)
	checked = 0
	for i := range 10000 {
		if attempt(g, "victim", fmt.Sprint("a", i%50)) {
			checked++
		}
	}
	// The username's 10, then one per address that had not failed.
	if checked != 50 {
		t.Fatalf("50 addresses: %d checks, want 50", checked)
	}
	// The owner from an address that has not failed still gets in.
	tk, _, ok, _ := g.Admit(ctx, "victim", "owner")
	if !ok {
		t.Fatal("owner refused from a fresh address")
	}
	tk.Succeeded()
	// From an address that failed, refused, with a Retry-After.
	_, wait, ok, _ := g.Admit(ctx, "victim", "a3")
	if ok || wait < time.Second || wait > 10*time.Minute {
		t.Fatalf("failed address: ok=%v wait=%v", ok, wait)
	}
}

func TestFailedAddressesStaySubjectToTheUsernameBudget(t *testing.T) {
	g, now := testGuard(5, 10, 1000)
	round := func() int {
		checked := 0
		for i := range 500 {
			if attempt(g, "victim", fmt.Sprint("a", i%50)) {
				checked++
			}
		}
		return checked
	}
	if n := round(); n != 50 {
		t.Fatalf("first round: %d checks, want 50", n)
	}
	// Ten minutes on, pairs and username have refilled: the username's 10
	// only, no address has a free check again.
	*now = now.Add(10 * time.Minute)
	if n := round(); n != 10 {
		t.Fatalf("after 10 min: %d checks, want 10", n)
	}
	// A day on, the addresses are forgotten.
	*now = now.Add(FailedPairMemory)
	if n := round(); n != 50 {
		t.Fatalf("after a day: %d checks, want 50", n)
	}
}

func TestUsernameBudgetWithoutPairLimit(t *testing.T) {
	g := NewFailureGuard(FailureQuotas{UserAddr: NoLimit, User: Quota{3, time.Hour}, Addr: NoLimit}, 100)
	checked := 0
	for range 100 {
		if attempt(g, "u", "a") {
			checked++
		}
	}
	if checked != 3 {
		t.Fatalf("%d checks from one address without a pair limit, want the username's 3", checked)
	}
}

func TestRefillAndRetryAfter(t *testing.T) {
	g, now := testGuard(2, 100, 100)
	attempt(g, "u", "a")
	attempt(g, "u", "a")
	_, wait, ok, _ := g.Admit(ctx, "u", "a")
	if ok || wait < 4*time.Minute || wait > 5*time.Minute {
		t.Fatalf("over the pair's 2: ok=%v wait=%v (one refills every 5 min)", ok, wait)
	}
	*now = now.Add(5 * time.Minute)
	if !attempt(g, "u", "a") {
		t.Fatal("no refill after 5 min")
	}
	if attempt(g, "u", "a") {
		t.Fatal("refilled more than one")
	}
}

func TestConcurrentAttemptsCannotOverrun(t *testing.T) {
	g, _ := testGuard(5, 1, 1000)
	attempt(g, "u", "spent") // the username's budget is gone
	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []*Ticket
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tk, _, ok, _ := g.Admit(ctx, "u", "fresh"); ok {
				mu.Lock()
				admitted = append(admitted, tk)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// In flight, a fresh pair gets one check past an empty username budget.
	if len(admitted) != 1 {
		t.Fatalf("%d admitted at once, want 1", len(admitted))
	}
	admitted[0].Cancel()
	if tk, _, ok, _ := g.Admit(ctx, "u", "fresh"); !ok {
		t.Fatal("a cancelled attempt was counted")
	} else {
		tk.Failed()
	}
	if _, _, ok, _ := g.Admit(ctx, "u", "fresh"); ok {
		t.Fatal("a failed pair passed an empty username budget")
	}
}

func TestNoLimitAndBoundedKeys(t *testing.T) {
	g := NewFailureGuard(FailureQuotas{UserAddr: NoLimit, User: NoLimit, Addr: NoLimit}, 10)
	for range 100 {
		if !attempt(g, "u", "a") {
			t.Fatal("refused without limits")
		}
	}
	g, _ = testGuard(1, 1, 1000)
	g.pairs, g.users, g.addrs = newBuckets(10), newBuckets(10), newBuckets(10)
	for i := range 100 {
		attempt(g, fmt.Sprint("u", i), fmt.Sprint("a", i))
	}
	if p, u, a := g.Len(); p != 10 || u != 10 || a != 10 {
		t.Fatalf("held %d pairs, %d users, %d addresses; want 10 each", p, u, a)
	}
}

var ctx = context.Background()
