package command_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// TestMain stops the test PostgreSQL after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// onSharedStores runs fn with n stores opened on one database, each with
// its own writer, as n engines would: on PostgreSQL and on one SQLite file
// (cheap, and the same lease statements).
func onSharedStores(t *testing.T, n int, fn func(t *testing.T, stores []*sqlstore.DB)) {
	commandtest.OnEachDialect(t, n, fn)
}

// ledger records the executions of the "n" commands of several replicas.
type ledger struct {
	mu   sync.Mutex
	seq  []int // payloads in the order their Applies ran
	live int   // Applies of one key running now
	max  int   // most at once
}

func newLedger() *ledger { return &ledger{} }

// handler appends the payload, counting how many Applies run at once.
func (l *ledger) handler(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var n int
	decode(c, &n)
	l.mu.Lock()
	l.live++
	if l.live > l.max {
		l.max = l.live
	}
	l.seq = append(l.seq, n)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.live--
		l.mu.Unlock()
	}()
	// One row per application: a second application of one command fails
	// (its id is the profile's), so a double apply would be a rejection.
	return command.Result{}, q.CreateProfile(ctx, profileRow(fmt.Sprintf("%s-%d", c.ProfileID, n)))
}

// replicas starts one processor per store, sharing the store, each its own
// replica, with handler for "n".
func replicas(t *testing.T, stores []*sqlstore.DB, opts command.Options, setup func(i int, p *command.Processor)) []*command.Processor {
	var ps []*command.Processor
	for i, db := range stores {
		o := opts
		o.Shared, o.Replica = true, fmt.Sprintf("replica-%d", i)
		p := command.New(db, commandtest.Nowhere{}, o)
		setup(i, p)
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		ps = append(ps, p)
	}
	return ps
}

// TestReplicasRunEachCommandOnceInOrder: commands of one key submitted
// round-robin through three replicas on one database each run once, in
// acceptance order, never two at a time, whichever replica claims them.
func TestReplicasRunEachCommandOnceInOrder(t *testing.T) {
	onSharedStores(t, 3, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		l := newLedger()
		block := make(chan struct{})
		ps := replicas(t, stores, command.Options{Workers: 4, Sweep: 50 * time.Millisecond}, func(i int, p *command.Processor) {
			p.Handle("n", l.handler)
			// The first command waits until all are submitted, so that the
			// others queue behind it on every replica.
			command.Register(p, "first", command.Task[struct{}, struct{}]{
				Prepare: func(ctx context.Context, c *privicore.Command, _ struct{}, _ bool) (struct{}, error) {
					<-block
					return struct{}{}, nil
				},
				Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ struct{}) (command.Result, error) {
					return l.handler(ctx, q, c)
				},
			})
		})
		const n = 30
		var cmds []*privicore.Command
		c, err := ps[0].Submit(ctx, "key", "first", 0)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		for i := 1; i < n; i++ {
			c, err := ps[i%len(ps)].Submit(ctx, "key", "n", i)
			if err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, c)
		}
		close(block)
		for _, c := range cmds {
			commandtest.Succeeded(t, stores[0], c, nil)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		if got := lastRuns(l.seq); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("applied in the order %v, want %v", got, want)
		}
		if l.max != 1 {
			t.Fatalf("%d commands of one key ran at once", l.max)
		}
	})
}

// TestKilledReplicasCommandIsResumedOnce: a replica whose execution never
// returns and whose store is gone (killed: its lease is never released nor
// renewed) has the command finished by another replica once the lease
// expires, exactly once, and the key's later commands after it.
func TestKilledReplicasCommandIsResumedOnce(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		l := newLedger()
		stuck := make(chan struct{}) // the first replica's Prepare waits here for ever (until the test ends)
		defer close(stuck)
		started := make(chan struct{}, 1)
		var prepares sync.Map // replica → Prepare runs
		opts := command.Options{Workers: 2, Sweep: 50 * time.Millisecond, Lease: 600 * time.Millisecond}
		var ps []*command.Processor
		for i, db := range stores {
			o := opts
			o.Shared, o.Replica = true, fmt.Sprintf("replica-%d", i)
			p := command.New(db, commandtest.Nowhere{}, o)
			p.Handle("n", l.handler)
			command.Register(p, "device", command.Task[struct{}, struct{}]{
				Prepare: func(ctx context.Context, c *privicore.Command, _ struct{}, _ bool) (struct{}, error) {
					v, _ := prepares.LoadOrStore(i, new(int))
					*v.(*int)++
					if i == 0 {
						started <- struct{}{}
						<-stuck
					}
					return struct{}{}, nil
				},
				Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ struct{}) (command.Result, error) {
					return l.handler(ctx, q, c)
				},
			})
			ps = append(ps, p)
		}
		// Only the first replica runs at first: it claims the command.
		if err := ps[0].Start(ctx); err != nil {
			t.Fatal(err)
		}
		first, err := ps[0].Submit(ctx, "key", "device", 0)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(commandtest.Wait):
			t.Fatal("the first replica never ran the command")
		}
		later, err := ps[0].Submit(ctx, "key", "n", 1)
		if err != nil {
			t.Fatal(err)
		}
		// Kill it: its store goes (no renewal, no release), its execution
		// hangs. The second replica starts.
		stores[0].Close()
		if err := ps[1].Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer ps[1].Stop()
		got := commandtest.Succeeded(t, stores[1], first, nil)
		commandtest.Succeeded(t, stores[1], later, nil)
		if got.Status != privicore.CommandSucceeded {
			t.Fatalf("resumed command: %+v", got)
		}
		if v, _ := prepares.Load(1); v == nil || *v.(*int) != 1 {
			t.Fatalf("the second replica ran Prepare %v times, want once", v)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if got := lastRuns(l.seq); fmt.Sprint(got) != "[0 1]" {
			t.Fatalf("applied %v, want [0 1]", got)
		}
	})
}

// TestInlineCommandsOfOneKeyOnTwoReplicasStayInOrder: commands of one key
// submitted concurrently on two replicas, inline where they can, apply one
// at a time, and each submitter's own commands in its submission order;
// an inline command never commits ahead of a pending one of its key.
func TestInlineCommandsOfOneKeyOnTwoReplicasStayInOrder(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		var applied []string // "replica:n" in the order the Applies ran
		live, most := 0, 0
		ps := replicas(t, stores, command.Options{Workers: 4, Sweep: 50 * time.Millisecond}, func(i int, p *command.Processor) {
			p.Handle("n", func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
				var v string
				decode(c, &v)
				mu.Lock()
				live++
				most = max(most, live)
				applied = append(applied, v)
				mu.Unlock()
				defer func() {
					mu.Lock()
					live--
					mu.Unlock()
				}()
				return command.Result{}, q.CreateProfile(ctx, profileRow(c.ProfileID+"-"+v))
			})
		})
		const n = 25
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		var all sync.Map
		for r, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					c, err := p.Submit(ctx, "key", "n", fmt.Sprintf("%d:%03d", r, i))
					if err != nil {
						errs <- err
						return
					}
					all.Store(c.ID, c)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		all.Range(func(_, v any) bool {
			commandtest.Succeeded(t, stores[0], v.(*privicore.Command), nil)
			return true
		})
		var rows int
		if err := stores[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM profiles`).Scan(&rows); err != nil || rows != 2*n {
			t.Fatalf("%d applications of %d commands committed (%v)", rows, 2*n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		applied = lastRuns(applied)
		if len(applied) != 2*n {
			t.Fatalf("%d commands applied, want %d: %v", len(applied), 2*n, applied)
		}
		last := map[byte]string{}
		for _, v := range applied {
			if prev := last[v[0]]; prev >= v {
				t.Fatalf("replica %c's commands applied out of order: %s after %s (%v)", v[0], v, prev, applied)
			}
			last[v[0]] = v
		}
		if most != 1 {
			t.Fatalf("%d commands of one key applied at once", most)
		}
	})
}

// TestHeldCommandResumedOnAnotherReplicaRunsOnce: a command the gate holds
// on one replica, resumed by another (the vote decided there), runs once;
// while held it holds back no later command of its key.
func TestHeldCommandResumedOnAnotherReplicaRunsOnce(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		l := newLedger()
		g := &holdFirst{decided: map[string]bool{}}
		ps := replicas(t, stores, command.Options{Workers: 2, Sweep: 50 * time.Millisecond, Gate: g}, func(i int, p *command.Processor) {
			p.Handle("n", l.handler)
			p.Event("n", func(c *privicore.Command) string {
				var n int
				decode(c, &n)
				if n == 0 {
					return "vote"
				}
				return ""
			})
		})
		held, err := ps[0].Submit(ctx, "key", "n", 0)
		if err != nil {
			t.Fatal(err)
		}
		commandtest.Eventually(t, "the command is held", func() bool {
			c, err := stores[0].FindCommand(ctx, held.ID)
			return err == nil && c.Held
		})
		commandtest.Succeeded(t, stores[1], mustSubmit(t, ps[1], "key", 1), nil)
		g.decide(held.ID)
		ps[1].Resume(ctx, held.ID)
		commandtest.Succeeded(t, stores[0], held, nil)
		l.mu.Lock()
		defer l.mu.Unlock()
		if got := lastRuns(l.seq); fmt.Sprint(got) != "[1 0]" {
			t.Fatalf("applied %v, want [1 0] (the held command after the later one, once)", got)
		}
	})
}

// lastRuns keeps the last run of each Apply: a write may run twice, its
// first run rolled back, when another write of its group commit fails
// (sqlstore's commit); the last run is the one that committed.
func lastRuns[T comparable](runs []T) []T {
	last := map[T]int{}
	for i, v := range runs {
		last[v] = i
	}
	var out []T
	for i, v := range runs {
		if last[v] == i {
			out = append(out, v)
		}
	}
	return out
}

func mustSubmit(t *testing.T, p *command.Processor, profileID string, n int) *privicore.Command {
	t.Helper()
	c, err := p.Submit(context.Background(), profileID, "n", n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holdFirst is a Gate holding every command that fires "vote" until decide.
type holdFirst struct {
	mu      sync.Mutex
	decided map[string]bool
}

func (g *holdFirst) Gated(ctx context.Context, c *privicore.Command, event string) bool { return true }

func (g *holdFirst) Check(ctx context.Context, c *privicore.Command, event string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.decided[c.ID], nil
}

func (g *holdFirst) decide(id string) {
	g.mu.Lock()
	g.decided[id] = true
	g.mu.Unlock()
}

// TestStoppedReplicaHandsOverAtOnce: a replica that stops releases what it
// held, so that its held command whose input only it had is taken by
// another replica as soon as it is resumed, not when the stopped
// replica's reservation would have expired (an hour here).
func TestStoppedReplicaHandsOverAtOnce(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		g := &holdFirst{decided: map[string]bool{}}
		var kinds []*command.Kind[string]
		ps := replicas(t, stores, command.Options{Workers: 2, Sweep: 50 * time.Millisecond, Lease: time.Hour, Gate: g}, func(i int, p *command.Processor) {
			kinds = append(kinds, command.Register(p, "staged", command.Task[string, string]{
				Prepare: func(ctx context.Context, c *privicore.Command, in string, has bool) (string, error) {
					if !has {
						return "", privicore.Reject("test.input_gone", "the input was in the stopped replica's memory")
					}
					return in, nil
				},
				Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, out string) (command.Result, error) {
					return command.Result{Body: out}, nil
				},
			}))
			p.Event("staged", func(*privicore.Command) string { return "vote" })
		})
		held, err := kinds[0].Submit(ctx, "key", "payload", "in memory")
		if err != nil {
			t.Fatal(err)
		}
		commandtest.Eventually(t, "the command is held", func() bool {
			c, err := stores[0].FindCommand(ctx, held.ID)
			return err == nil && c.Held
		})
		ps[0].Stop()
		g.decide(held.ID)
		ps[1].Resume(ctx, held.ID)
		commandtest.Rejected(t, stores[1], "test.input_gone", held, nil)
	})
}
