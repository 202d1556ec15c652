package command_test

import (
	"context"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// The events of commands submitted under a Hold (their acks and what their
// handlers Publish) wait for its Release, inline or queued, in the order they
// were raised; afterwards they go out at once.
func TestHoldKeepsEventsUntilRelease(t *testing.T) {
	ctx := context.Background()
	p, rec, _ := newProcessor(t, command.Options{Workers: 2})
	emit := func(c *privicore.Command) {
		p.Publish(c.ID, c.ProfileID, command.Event{Type: "DATA", ID: c.ID, CommandStatus: privicore.CommandSucceeded})
	}
	p.Handle("inline", func(_ context.Context, _ privicore.Queries, c *privicore.Command) (command.Result, error) {
		return command.Result{After: func() { emit(c) }}, nil
	})
	command.Register(p, "queued", command.Task[struct{}, any]{Key: command.ByID,
		Prepare: func(context.Context, *privicore.Command, struct{}, bool) (any, error) { return nil, nil },
		Apply: func(_ context.Context, _ privicore.Queries, c *privicore.Command, _ any) (command.Result, error) {
			return command.Result{After: func() { emit(c) }}, nil
		}})
	p.Start(ctx)
	defer p.Stop()

	hctx, hold := command.WithHold(ctx)
	in, err := p.Submit(hctx, "x", "inline", "a")
	if err != nil || in.Status != privicore.CommandSucceeded {
		t.Fatalf("inline: %+v %v", in, err)
	}
	q, err := p.Submit(hctx, "x", "queued", "b")
	if err != nil {
		t.Fatal(err)
	}
	// The queued command finishes in the background; its events wait too.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err := p.Status(ctx, q.ID, "x")
		if err == nil && st.Status == privicore.CommandSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued command did not finish: %+v %v", st, err)
		}
	}
	select {
	case ev := <-rec.got:
		t.Fatalf("event %+v before the release", ev)
	default:
	}
	hold.Release()
	var got []string
	for range 4 {
		select {
		case ev := <-rec.got:
			got = append(got, ev.Type+" "+ev.ID)
		case <-time.After(10 * time.Second):
			t.Fatalf("released only %v", got)
		}
	}
	want := []string{command.EventCommand + " " + in.ID, "DATA " + in.ID, command.EventCommand + " " + q.ID, "DATA " + q.ID}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("released %v, want %v", got, want)
		}
	}
	// After the release, nothing waits.
	later, err := p.Submit(hctx, "x", "inline", "c")
	if err != nil {
		t.Fatal(err)
	}
	rec.wait(t, later.ID)
	hold.Release() // twice is harmless
}
