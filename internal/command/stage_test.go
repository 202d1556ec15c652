package command_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

// stagedOut is the Out of the staging Task of these tests: JSON-serialisable.
type stagedOut struct {
	Blob    string `json:"blob"`
	Replica int    `json:"replica"` // where Prepare ran
}

// stageLog records, per replica, the Prepares, Applies and Compensates of
// the staging Task, with the Outs the latter got.
type stageLog struct {
	mu          sync.Mutex
	prepares    map[int]int
	applied     map[int][]stagedOut
	compensated map[int][]stagedOut
}

func newStageLog() *stageLog {
	return &stageLog{prepares: map[int]int{}, applied: map[int][]stagedOut{}, compensated: map[int][]stagedOut{}}
}

// task is replica i's staging Task: Prepare turns the in-memory input into
// an Out (rejecting when the input is gone), Apply answers with its blob.
func (l *stageLog) task(i int) command.Task[string, stagedOut] {
	return command.Task[string, stagedOut]{StageBeforeGate: true,
		Prepare: func(ctx context.Context, c *privicore.Command, in string, has bool) (stagedOut, error) {
			l.mu.Lock()
			l.prepares[i]++
			l.mu.Unlock()
			if !has {
				return stagedOut{}, privicore.Reject("test.input_gone", "the input was in another replica's memory")
			}
			return stagedOut{Blob: "blob of " + in, Replica: i}, nil
		},
		Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, out stagedOut) (command.Result, error) {
			l.mu.Lock()
			l.applied[i] = append(l.applied[i], out)
			l.mu.Unlock()
			return command.Result{Body: out.Blob}, nil
		},
		Compensate: func(ctx context.Context, q privicore.Queries, c *privicore.Command, out stagedOut) error {
			l.mu.Lock()
			l.compensated[i] = append(l.compensated[i], out)
			l.mu.Unlock()
			return nil
		},
	}
}

// decidingGate holds every command until decide, then proceeds with it or
// rejects it.
type decidingGate struct {
	mu      sync.Mutex
	decided map[string]error // id → nil (approved) or the rejection
}

func (g *decidingGate) Gated(ctx context.Context, c *privicore.Command, event string) bool {
	return true
}

func (g *decidingGate) Check(ctx context.Context, c *privicore.Command, event string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	err, ok := g.decided[c.ID]
	return ok && err == nil, err
}

func (g *decidingGate) decide(id string, err error) {
	g.mu.Lock()
	g.decided[id] = err
	g.mu.Unlock()
}

// heldStagedOnFirstReplicaThenStopped submits a staging command on the
// first of two replicas, waits until the gate holds it with its Out
// recorded, and stops that replica.
func heldStagedOnFirstReplicaThenStopped(t *testing.T, stores []*sqlstore.DB, g *decidingGate, l *stageLog) ([]*command.Processor, *privicore.Command) {
	t.Helper()
	ctx := context.Background()
	var kinds []*command.Kind[string]
	ps := replicas(t, stores, command.Options{Workers: 2, Sweep: 50 * time.Millisecond, Lease: time.Hour, Gate: g}, func(i int, p *command.Processor) {
		kinds = append(kinds, command.Register(p, "staged", l.task(i)))
		p.Event("staged", func(*privicore.Command) string { return "vote" })
	})
	held, err := kinds[0].Submit(ctx, "key", "payload", "in memory")
	if err != nil {
		t.Fatal(err)
	}
	var rec *privicore.Command
	commandtest.Eventually(t, "the command is held", func() bool {
		c, err := stores[0].FindCommand(ctx, held.ID)
		rec = c
		return err == nil && c.Held
	})
	var out stagedOut
	if err := json.Unmarshal(rec.Staged, &out); err != nil || out != (stagedOut{Blob: "blob of in memory", Replica: 0}) {
		t.Fatalf("staged %q (%v), want the first replica's Out", rec.Staged, err)
	}
	if rec.Origin != "" {
		t.Fatalf("a staged command keeps its Origin %q: only that replica could resume it", rec.Origin)
	}
	ps[0].Stop()
	return ps, held
}

// TestStagedCommandApprovedAfterItsReplicaStopped: a staging Task's
// command held by a vote on a replica that then stops is applied by
// another once approved, with the Out the stopped replica's Prepare
// recorded, Prepare not run again.
func TestStagedCommandApprovedAfterItsReplicaStopped(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		g := &decidingGate{decided: map[string]error{}}
		l := newStageLog()
		ps, held := heldStagedOnFirstReplicaThenStopped(t, stores, g, l)
		g.decide(held.ID, nil)
		ps[1].Resume(ctx, held.ID)
		got := commandtest.Succeeded(t, stores[1], held, nil)
		if got.Body != "blob of in memory" {
			t.Fatalf("ack body %q, want the staged Out's", got.Body)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.prepares[0] != 1 || l.prepares[1] != 0 {
			t.Fatalf("Prepare ran %v (replica → runs), want once, on the first replica", l.prepares)
		}
		if want := (stagedOut{Blob: "blob of in memory", Replica: 0}); len(l.applied[1]) != 1 || l.applied[1][0] != want || len(l.compensated[1]) != 0 {
			t.Fatalf("the second replica applied %v, compensated %v; want %v applied", l.applied[1], l.compensated[1], want)
		}
	})
}

// TestStagedCommandRejectedAfterItsReplicaStopped: the same command, its
// vote rejecting it, is rejected by the other replica with the vote's
// reason, and Compensate gets the staged Out (to undo what Prepare did).
func TestStagedCommandRejectedAfterItsReplicaStopped(t *testing.T) {
	onSharedStores(t, 2, func(t *testing.T, stores []*sqlstore.DB) {
		ctx := context.Background()
		g := &decidingGate{decided: map[string]error{}}
		l := newStageLog()
		ps, held := heldStagedOnFirstReplicaThenStopped(t, stores, g, l)
		g.decide(held.ID, privicore.Reject("voting.rejected", "the vote rejected it"))
		ps[1].Resume(ctx, held.ID)
		commandtest.Rejected(t, stores[1], "voting.rejected", held, nil)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.prepares[1] != 0 {
			t.Fatalf("the second replica ran Prepare %d times", l.prepares[1])
		}
		if want := (stagedOut{Blob: "blob of in memory", Replica: 0}); len(l.compensated[1]) != 1 || l.compensated[1][0] != want || len(l.applied[1]) != 0 {
			t.Fatalf("the second replica compensated %v, applied %v; want %v compensated", l.compensated[1], l.applied[1], want)
		}
	})
}

// TestUngatedStagingCommandStagesNothing: without a gate holding it, a
// staging Task's command runs as any other: Prepare once, nothing recorded
// with the command besides its outcome.
func TestUngatedStagingCommandStagesNothing(t *testing.T) {
	ctx := context.Background()
	store := commandtest.Open(t)
	l := newStageLog()
	p := command.New(store, commandtest.Nowhere{}, command.Options{Sweep: 50 * time.Millisecond})
	k := command.Register(p, "staged", l.task(0))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	c, err := k.Submit(ctx, "key", "payload", "in memory")
	got := commandtest.Succeeded(t, store, c, err)
	if got.Body != "blob of in memory" || len(got.Staged) != 0 {
		t.Fatalf("ungated command: body %q, staged %q; want the Out's body and nothing staged", got.Body, got.Staged)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prepares[0] != 1 {
		t.Fatalf("Prepare ran %d times, want once", l.prepares[0])
	}
}
