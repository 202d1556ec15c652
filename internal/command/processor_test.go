package command_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/sqlstore"
)

// recorder is a Publisher that keeps what it got.
type recorder struct {
	mu     sync.Mutex
	events map[string][]command.Event
	got    chan command.Event
}

func newRecorder() *recorder {
	return &recorder{events: map[string][]command.Event{}, got: make(chan command.Event, 1000)}
}

func (r *recorder) Publish(profileID string, data any) {
	ev := data.(command.Event)
	r.mu.Lock()
	r.events[profileID] = append(r.events[profileID], ev)
	r.mu.Unlock()
	r.got <- ev
}

func (r *recorder) wait(t *testing.T, id string) command.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.got:
			if ev.ID == id {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s", id)
		}
	}
}

func openStore(t *testing.T, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newProcessor runs a processor over a fresh database (closed with the
// test), publishing to a recorder.
func newProcessor(t *testing.T, opts command.Options) (*command.Processor, *recorder, *sqlstore.DB) {
	t.Helper()
	db := openStore(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { db.Close() })
	rec := newRecorder()
	return command.New(db, rec, opts), rec, db
}

func profileRow(id string) *privicore.Profile {
	now := time.Now().UTC()
	return &privicore.Profile{ID: id, Username: id, PasswordHash: "h", CreatedAt: now, UpdatedAt: now}
}

func TestSuccessRejectionAndRollback(t *testing.T) {
	ctx := context.Background()
	p, rec, db := newProcessor(t, command.Options{Workers: 4})
	p.Handle("create", func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
		var name string
		if err := decode(c, &name); err != nil {
			return command.Result{}, err
		}
		if err := q.CreateProfile(ctx, profileRow(name)); err != nil {
			return command.Result{}, err
		}
		if name == "refuse" {
			return command.Result{}, privicore.Reject("test.refused", "no")
		}
		return command.Result{Body: "made " + name, Notify: "observer"}, nil
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	ok, err := p.Submit(ctx, "owner", "create", "kept")
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.wait(t, ok.ID)
	if ev.CommandStatus != privicore.CommandSucceeded || ev.Body != "made kept" || ev.Type != "X-DPT-CAB-ID" {
		t.Fatalf("event %+v", ev)
	}
	bad, _ := p.Submit(ctx, "owner", "create", "refuse")
	ev = rec.wait(t, bad.ID)
	if ev.CommandStatus != privicore.CommandRejected || ev.Body != "test.refused" {
		t.Fatalf("rejection event %+v", ev)
	}
	// The rejected handler's insert was rolled back; the other committed.
	if _, err := db.FindProfileByID(ctx, "refuse"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("rejected command left state behind: %v", err)
	}
	if _, err := db.FindProfileByID(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	c, _ := p.Status(ctx, bad.ID, "")
	if c.Status != privicore.CommandRejected || c.Body != "test.refused" {
		t.Fatalf("stored %+v", c)
	}
	if _, err := p.Status(ctx, bad.ID, "someone-else"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("another profile read the command: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events["observer"]) != 1 || len(rec.events["owner"]) != 2 {
		t.Fatalf("events by profile: %v", rec.events)
	}
}

func TestTransientFailuresAreRetriedThenRejected(t *testing.T) {
	ctx := context.Background()
	p, rec, _ := newProcessor(t, command.Options{Workers: 1, Sweep: 20 * time.Millisecond, MaxAttempts: 3})
	var mu sync.Mutex
	calls := map[string]int{}
	// The failure is Prepare's, which runs once per attempt, outside any
	// transaction: a write function may run twice (the store re-runs a
	// batch in savepoints when one of its writes fails), so counting
	// handler calls would count the store's re-runs too.
	flaky := command.Register(p, "flaky", command.Task[struct{}, struct{}]{
		PrepareInline: true,
		Prepare: func(ctx context.Context, c *privicore.Command, _ struct{}, _ bool) (struct{}, error) {
			mu.Lock()
			defer mu.Unlock()
			calls[c.ID]++
			var mode string
			decode(c, &mode)
			if mode == "always" || calls[c.ID] < 2 {
				return struct{}{}, errors.New("device hiccup")
			}
			return struct{}{}, nil
		},
		Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ struct{}) (command.Result, error) {
			return command.Result{}, nil
		},
	})
	p.Start(ctx)
	defer p.Stop()
	once, _ := flaky.Submit(ctx, "x", "once", struct{}{})
	// Its own profile: nothing is queued before it, so its first try is
	// always inline (a transient failure there is not an attempt), and
	// MaxAttempts tries follow on the queued path. (Behind "once", whether
	// it ran inline depended on whether "once" had finished.)
	always, _ := flaky.Submit(ctx, "y", "always", struct{}{})
	if ev := rec.wait(t, once.ID); ev.CommandStatus != privicore.CommandSucceeded {
		t.Fatalf("retried command: %+v", ev)
	}
	if ev := rec.wait(t, always.ID); ev.CommandStatus != privicore.CommandRejected || ev.Body != command.ReasonFailed {
		t.Fatalf("hopeless command: %+v", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[always.ID] != 1+3 {
		t.Fatalf("hopeless command ran %d times, want one inline try and MaxAttempts=3", calls[always.ID])
	}
}

func TestPendingCommandsResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db := openStore(t, path)
	var ran sync.WaitGroup
	handler := func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
		var name string
		decode(c, &name)
		return command.Result{}, q.CreateProfile(ctx, profileRow(name))
	}
	// A processor that never starts: its commands are recorded but not run,
	// as after a crash between the 202 and the execution.
	p := command.New(db, nil, command.Options{})
	p.Handle("create", handler)
	var ids []string
	for _, n := range []string{"a", "b", "c"} {
		c, err := p.Submit(ctx, "owner", "create", n)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	db.Close()

	db = openStore(t, path)
	defer db.Close()
	rec := newRecorder()
	p = command.New(db, rec, command.Options{})
	p.Handle("create", handler)
	ran.Add(1)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for _, id := range ids {
		if ev := rec.wait(t, id); ev.CommandStatus != privicore.CommandSucceeded {
			t.Fatalf("resumed %s: %+v", id, ev)
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := db.FindProfileByID(ctx, n); err != nil {
			t.Fatalf("profile %s: %v", n, err)
		}
	}
}

func TestCommandsOfOneProfileRunInOrder(t *testing.T) {
	ctx := context.Background()
	p, rec, _ := newProcessor(t, command.Options{Workers: 8})
	var mu sync.Mutex
	var order []int
	p.Handle("n", func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
		var n int
		decode(c, &n)
		mu.Lock()
		order = append(order, n)
		mu.Unlock()
		return command.Result{}, nil
	})
	p.Start(ctx)
	defer p.Stop()
	var last string
	for i := range 50 {
		c, _ := p.Submit(ctx, "same-profile", "n", i)
		last = c.ID
	}
	rec.wait(t, last)
	mu.Lock()
	defer mu.Unlock()
	for i, n := range order {
		if n != i {
			t.Fatalf("order %v", order)
		}
	}
}

func TestSubmitUnknownTypeFails(t *testing.T) {
	db := openStore(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	p := command.New(db, nil, command.Options{})
	if _, err := p.Submit(context.Background(), "x", "nope", nil); err == nil {
		t.Fatal("submitted a command nobody handles")
	}
}

// A command whose Prepare may run inline is written once, with its outcome,
// before its release (After) runs; a Prepare too slow for the caller is cut
// short and the command takes the queued path, recorded first.
func TestPrepareInline(t *testing.T) {
	ctx := context.Background()
	p, rec, _ := newProcessor(t, command.Options{Workers: 1})
	var mu sync.Mutex
	var released []string
	prepares := map[string]int{}
	command.Register(p, "read", command.Task[struct{}, any]{Key: command.ByID, PrepareInline: true,
		Prepare: func(ctx context.Context, c *privicore.Command, _ struct{}, _ bool) (any, error) {
			var mode string
			decode(c, &mode)
			mu.Lock()
			prepares[c.ID]++
			first := prepares[c.ID] == 1
			mu.Unlock()
			if mode == "slow" && first {
				<-ctx.Done() // stuck until the caller's budget runs out
				return nil, ctx.Err()
			}
			return func() {
				// The outcome is durable before anything is released.
				if st, err := p.Status(context.Background(), c.ID, "x"); err != nil || st.Status != privicore.CommandSucceeded {
					t.Errorf("released before the outcome was recorded: %+v %v", st, err)
				}
				mu.Lock()
				released = append(released, c.ID)
				mu.Unlock()
			}, nil
		},
		Apply: func(_ context.Context, _ privicore.Queries, _ *privicore.Command, prepared any) (command.Result, error) {
			return command.Result{After: prepared.(func())}, nil
		}})
	p.Start(ctx)
	defer p.Stop()

	fast, err := p.Submit(ctx, "x", "read", "fast")
	if err != nil || fast.Status != privicore.CommandSucceeded {
		t.Fatalf("inline command: %+v %v", fast, err)
	}
	mu.Lock()
	if len(released) != 1 || released[0] != fast.ID {
		t.Fatalf("released %v when Submit returned", released)
	}
	mu.Unlock()

	start := time.Now()
	slow, err := p.Submit(ctx, "x", "read", "slow")
	if err != nil || slow.Status != privicore.CommandPending || time.Since(start) > 5*time.Second {
		t.Fatalf("slow command: %+v %v after %v", slow, err, time.Since(start))
	}
	if ev := rec.wait(t, slow.ID); ev.CommandStatus != privicore.CommandSucceeded {
		t.Fatalf("slow command: %+v", ev)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(released)
		mu.Unlock()
		if n == 2 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if prepares[slow.ID] != 2 || len(released) != 2 || released[1] != slow.ID {
		t.Fatalf("prepares %v, released %v", prepares, released)
	}
}

// An inline command rejected by Apply after its Prepare did something
// outside the engine is recorded with Compensate's changes (the same
// transaction), as on the queued path; Apply's own changes roll back.
func TestInlineRejectionCompensates(t *testing.T) {
	ctx := context.Background()
	p, rec, db := newProcessor(t, command.Options{Workers: 1})
	command.Register(p, "push", command.Task[struct{}, any]{Key: command.ByID, PrepareInline: true,
		Prepare: func(_ context.Context, c *privicore.Command, _ struct{}, _ bool) (any, error) {
			var name string
			decode(c, &name)
			return name, nil // what was "pushed"
		},
		Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (command.Result, error) {
			if err := q.CreateProfile(ctx, profileRow("applied-"+prepared.(string))); err != nil {
				return command.Result{}, err
			}
			if prepared == "refuse" {
				return command.Result{}, privicore.Reject("test.refused", "no")
			}
			return command.Result{}, nil
		},
		Compensate: func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error {
			return q.CreateProfile(ctx, profileRow("undo-"+prepared.(string)))
		}})
	p.Start(ctx)
	defer p.Stop()

	c, err := p.Submit(ctx, "x", "push", "refuse")
	if err != nil || c.Status != privicore.CommandRejected || c.Body != "test.refused" {
		t.Fatalf("inline rejection: %+v %v", c, err)
	}
	if ev := rec.wait(t, c.ID); ev.CommandStatus != privicore.CommandRejected {
		t.Fatalf("event %+v", ev)
	}
	if _, err := db.FindProfileByID(ctx, "undo-refuse"); err != nil {
		t.Fatalf("Compensate did not run: %v", err)
	}
	if _, err := db.FindProfileByID(ctx, "applied-refuse"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("the rejected Apply left state behind: %v", err)
	}
	if st, err := p.Status(ctx, c.ID, "x"); err != nil || st.Status != privicore.CommandRejected {
		t.Fatalf("stored %+v %v", st, err)
	}
	ok, err := p.Submit(ctx, "x", "push", "fine")
	if err != nil || ok.Status != privicore.CommandSucceeded {
		t.Fatalf("inline success: %+v %v", ok, err)
	}
	if _, err := db.FindProfileByID(ctx, "undo-fine"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("Compensate ran for a success: %v", err)
	}
}

// Finished commands older than the retention are pruned, in as many
// batches as it takes; pending and recent ones stay. Start prunes at once.
func TestPruneAfterRetention(t *testing.T) {
	ctx := context.Background()
	p, _, db := newProcessor(t, command.Options{Retention: 24 * time.Hour})
	old := time.Now().UTC().Add(-48 * time.Hour)
	add := func(id string, status privicore.CommandStatus, at time.Time) {
		t.Helper()
		if err := db.Write(ctx, func(q privicore.Queries) error {
			return q.CreateCommand(ctx, &privicore.Command{ID: id, ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: status, CreatedAt: at, UpdatedAt: at})
		}); err != nil {
			t.Fatal(err)
		}
	}
	const many = 2500 // more than one batch
	if err := db.Write(ctx, func(q privicore.Queries) error {
		for i := range many {
			at := old.Add(time.Duration(i) * time.Millisecond)
			if err := q.CreateCommand(ctx, &privicore.Command{ID: fmt.Sprintf("old%04d", i), ProfileID: "p", Type: "t", Payload: []byte(`{}`),
				Status: privicore.CommandSucceeded, CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	add("old-pending", privicore.CommandPending, old)
	add("recent", privicore.CommandSucceeded, time.Now().UTC().Add(-time.Hour))

	n, err := p.Prune(ctx)
	if err != nil || n != many {
		t.Fatalf("pruned %d (%v), want %d", n, err, many)
	}
	for _, id := range []string{"old-pending", "recent"} {
		if _, err := db.FindCommand(ctx, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if _, err := db.FindCommand(ctx, "old0000"); privicore.ErrorCode(err) != privicore.ENOTFOUND {
		t.Fatalf("old0000: %v", err)
	}

	// Without a retention nothing is pruned.
	keep, _, kdb := newProcessor(t, command.Options{})
	if err := kdb.Write(ctx, func(q privicore.Queries) error {
		return q.CreateCommand(ctx, &privicore.Command{ID: "ancient", ProfileID: "p", Type: "t", Payload: []byte(`{}`), Status: privicore.CommandSucceeded,
			CreatedAt: old.Add(-365 * 24 * time.Hour), UpdatedAt: old})
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := keep.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("no retention: pruned %d (%v)", n, err)
	}

	// Start prunes at once.
	add("old-again", privicore.CommandSucceeded, old)
	p.Handle("t", func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
		return command.Result{}, nil
	})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := db.FindCommand(ctx, "old-again"); privicore.ErrorCode(err) == privicore.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Start did not prune")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
