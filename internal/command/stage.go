package command

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/privicore/privicore"
)

// Rejection reasons of staged commands (Task.StageBeforeGate).
const (
	// ReasonStageFailed: Prepare's Out could not be recorded (not JSON).
	ReasonStageFailed = "command.stage_failed"
	// ReasonStageUnreadable: a recorded Out could not be read back.
	ReasonStageUnreadable = "command.stage_unreadable"
)

// stageBefore runs c's Prepare ahead of the gate's check and records its
// Out with c (StageCommand, which also ends c's Origin reservation: the
// input is no longer needed, and any replica may end c). A Prepare error
// is returned as it is; an Out that is not JSON is a rejection, returned
// with the Out for finish to compensate; a failed record is a transient
// error (retried: the input is still here, Prepare runs again).
func (p *Processor) stageBefore(ctx context.Context, c *privicore.Command, h steps) (any, error) {
	in, has := p.input(c.ID)
	prepared, err := h.prepare(ctx, c, in, has)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(prepared)
	if err != nil {
		return prepared, privicore.Reject(ReasonStageFailed, "the prepared work could not be recorded: %v", err)
	}
	if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.StageCommand(ctx, c.ID, p.opts.Replica, raw) }); err != nil {
		// Not wrapped: a conflict (the lease passed to another replica) is
		// no rejection of the command.
		return nil, fmt.Errorf("command: staging %s: %v", c.ID, err)
	}
	c.Staged = raw
	p.dropInput(c.ID)
	return prepared, nil
}

// restage reads back the Out recorded with c (staged), if h stages and c
// has one.
func (h steps) restage(c *privicore.Command) (prepared any, staged bool, err error) {
	if len(c.Staged) == 0 || h.unstage == nil {
		return nil, false, nil
	}
	out, err := h.unstage(c.Staged)
	if err != nil {
		return nil, false, privicore.Reject(ReasonStageUnreadable, "the prepared work recorded with the command is unreadable: %v", err)
	}
	return out, true, nil
}
