package voting

import (
	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// The socket events of pools (spec §1). Each is published once the state
// it announces is committed, through the command processor's publisher
// (the acks' path: buffered for a profile without a joined socket).
const (
	// EventPoolOpened is the data.type of an attempt of a pool opening:
	// the first when the pool opens, then each retry that waits for
	// answers. With it, the held command's (or the ad-hoc vote's) pending
	// status: X-DPT-CAB-ID with command_status 1 and the pool id as body.
	EventPoolOpened = "POOL-OPENED"
	// EventPoolResolved is the data.type of a pool's final state.
	EventPoolResolved = "POOL-RESOLVED"
)

// PoolOpened is the data of a POOL-OPENED event.
type PoolOpened struct {
	Type      string `json:"type"`
	ID        string `json:"id"` // the pool id
	PoolID    string `json:"poolId"`
	CommandID string `json:"commandId"` // the held command, or the create-voting command
	Event     string `json:"event"`     // the gated event, or voting.create
	Attempt   int    `json:"attempt"`
	ExpiresAt string `json:"expiresAt"` // this attempt's deadline
}

// PoolResolved is the data of a POOL-RESOLVED event.
type PoolResolved struct {
	Type      string `json:"type"`
	ID        string `json:"id"` // the pool id
	PoolID    string `json:"poolId"`
	CommandID string `json:"commandId"`
	State     string `json:"state"` // approved, rejected, expired, cancelled, quorum_not_met
}

// openedNews returns the publication of pl's current attempt as it is now
// (POOL-OPENED, then the command's pending status), to run once committed.
// actor is who submitted the held command: the pending status is its ack,
// which an application's socket receives only for its own commands.
func (s *Service) openedNews(pl *privicore.Pool, actor string) func() {
	ev := PoolOpened{Type: EventPoolOpened, ID: pl.ID, PoolID: pl.ID, CommandID: pl.CommandID, Event: pl.Event, Attempt: pl.Attempt,
		ExpiresAt: pl.ExpiresAt.UTC().Format(privicore.TimeFormat)}
	pending := command.Event{Type: command.EventCommand, ID: pl.CommandID, CommandStatus: privicore.CommandPending, Body: pl.ID, Actor: actor}
	profileID, commandID := pl.ProfileID, pl.CommandID
	return func() {
		s.cmds.Publish(commandID, profileID, ev)
		s.cmds.Publish(commandID, profileID, pending)
	}
}

// resolvedNews returns the publication of pl's final state, to run once
// committed.
func (s *Service) resolvedNews(pl *privicore.Pool) func() {
	ev := PoolResolved{Type: EventPoolResolved, ID: pl.ID, PoolID: pl.ID, CommandID: pl.CommandID, State: pl.State}
	profileID, commandID := pl.ProfileID, pl.CommandID
	return func() { s.cmds.Publish(commandID, profileID, ev) }
}
