package command

import (
	"context"
	"encoding/json"

	"github.com/privicore/privicore"
)

// Task is a command type that does I/O (devices, the bus) besides its
// state change, its steps handing each other typed values.
//
// In is the command's input that is not in its payload (e.g. a payload the
// engine must not write to its database): Kind.Submit takes it with the
// command, and Prepare receives it. It stays in this process's memory only
// (never persisted): the command's Origin, so that other replicas leave
// the command to this one while it lives; a Prepare that runs after a
// restart, or on another replica once this one is gone, gets has false and
// must then reject or read what it needs again. Out is what Prepare
// did, handed to Apply and, on a rejection after it, to Compensate; with
// StageBeforeGate it is also recorded with the command, as JSON, and must
// then be JSON-serialisable.
type Task[In, Out any] struct {
	// Key names what the command must be ordered with: commands with the
	// same key run one at a time, in the order they were accepted. nil
	// orders by profile (the safe default); ByID for commands that need no
	// ordering.
	Key func(c *privicore.Command) string
	// PrepareInline lets the command run inline too: Prepare in the
	// submitting call, then the command written once with its outcome (one
	// write instead of two); a rejection after Prepare is recorded with
	// Compensate's changes, as on the queued path. If the process dies
	// before the write, the caller got no 202 and the command never
	// existed: only for a Prepare whose effects outside the engine are
	// harmless then (a read from the devices; a write to them of data that
	// is unreadable without what the write records). Whatever Prepare hands
	// out must wait for the Result's After, which runs once the outcome is
	// durable.
	PrepareInline bool
	// StageBeforeGate runs Prepare before the gate's check when the gate
	// may hold the command (Gate.Gated), and records its Out with the
	// command (Command.Staged) before the check: a vote that holds the
	// command then waits with Prepare's work done and durable, not with
	// the input in this process's memory. Whichever replica ends the
	// command afterwards uses the staged Out, without running Prepare
	// again: Apply on approval, Compensate on a rejection (the gate's or
	// Apply's). Only for a Prepare whose effects are harmless until Apply
	// records them (PrepareInline's condition). An ungated command runs
	// as without it: nothing more is written.
	StageBeforeGate bool
	// Prepare runs outside any transaction and may run again if the engine
	// crashes before the command finishes; nil for none (Apply then gets
	// Out's zero value).
	Prepare func(ctx context.Context, c *privicore.Command, in In, has bool) (Out, error)
	// Apply commits the state change with the command's status.
	Apply func(ctx context.Context, q privicore.Queries, c *privicore.Command, out Out) (Result, error)
	// Compensate, if set, runs in the transaction that records a rejection
	// that came after a successful Prepare (e.g. to schedule the removal of
	// what Prepare wrote to devices).
	Compensate func(ctx context.Context, q privicore.Queries, c *privicore.Command, out Out) error
}

// Kind submits the commands of one Task type, each with its input.
type Kind[In any] struct {
	p   *Processor
	typ string
}

// Register registers t as the handler of typ and returns its submitter.
// It must be called before Start.
func Register[In, Out any](p *Processor, typ string, t Task[In, Out]) *Kind[In] {
	s := steps{key: t.Key, prepareInline: t.PrepareInline}
	if t.Prepare != nil && t.StageBeforeGate {
		s.stage = true
		s.unstage = func(raw []byte) (any, error) {
			var out Out
			if err := json.Unmarshal(raw, &out); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	if t.Prepare != nil {
		s.prepare = func(ctx context.Context, c *privicore.Command, in any, has bool) (any, error) {
			v, _ := in.(In)
			out, err := t.Prepare(ctx, c, v, has)
			if err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	s.apply = func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (Result, error) {
		out, _ := prepared.(Out)
		return t.Apply(ctx, q, c, out)
	}
	if t.Compensate != nil {
		s.compensate = func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error {
			out, _ := prepared.(Out)
			return t.Compensate(ctx, q, c, out)
		}
	}
	p.register(typ, s)
	return &Kind[In]{p: p, typ: typ}
}

// Submit is Processor.Submit with the command's input in: Prepare gets it
// inline, or from this process's memory on the queued path.
func (k *Kind[In]) Submit(ctx context.Context, profileID string, payload any, in In) (*privicore.Command, error) {
	return k.p.submit(ctx, NewID(), profileID, k.typ, payload, in, true)
}

// setInput keeps the input of command id for its Prepare.
func (p *Processor) setInput(id string, in any) {
	p.inputMu.Lock()
	p.inputs[id] = in
	p.inputMu.Unlock()
}

// input returns the input of command id, if this process has it.
func (p *Processor) input(id string) (any, bool) {
	p.inputMu.Lock()
	defer p.inputMu.Unlock()
	in, ok := p.inputs[id]
	return in, ok
}

// dropInput forgets the input of command id (it finished, or was never recorded).
func (p *Processor) dropInput(id string) {
	p.inputMu.Lock()
	delete(p.inputs, id)
	p.inputMu.Unlock()
}

// hasInputs reports whether this process holds the input of any command
// (whose Origin reservation it must then renew).
func (p *Processor) hasInputs() bool {
	p.inputMu.Lock()
	defer p.inputMu.Unlock()
	return len(p.inputs) > 0
}
