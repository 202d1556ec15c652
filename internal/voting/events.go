package voting

import (
	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/command"
)

// The socket events of pools (spec §1; their shapes are api.PoolOpened
// and api.PoolResolved). Each is published once the state it announces is
// committed, through the command processor's publisher (the acks' path:
// buffered for a profile without a joined socket).

// openedNews returns the publication of pl's current attempt as it is now
// (POOL-OPENED, then the command's pending status), to run once committed.
// actor is who submitted the held command: the pending status is its ack,
// which an application's socket receives only for its own commands.
func (s *Service) openedNews(pl *privicore.Pool, actor string) func() {
	ev := api.PoolOpened{Type: api.EventPoolOpened, ID: pl.ID, PoolID: pl.ID, CommandID: pl.CommandID, Event: pl.Event, Attempt: pl.Attempt,
		ExpiresAt: pl.ExpiresAt}
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
	ev := api.PoolResolved{Type: api.EventPoolResolved, ID: pl.ID, PoolID: pl.ID, CommandID: pl.CommandID, State: pl.State}
	profileID, commandID := pl.ProfileID, pl.CommandID
	return func() { s.cmds.Publish(commandID, profileID, ev) }
}
