package datatoken

import (
	"context"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Delete removes a token at once (reads stop immediately) and queues the
// removal of its payload from every device holding it.
func (s *Service) Delete(ctx context.Context, profileID, token string) (*privicore.Command, error) {
	if token == "" {
		return nil, privicore.Invalid("token", "is required")
	}
	if _, err := s.owned(ctx, s.store, profileID, token); err != nil {
		return nil, err
	}
	return s.cmds.Run(ctx, profileID, CmdDelete, map[string]string{"token": token}, func(q privicore.Queries) (command.Result, error) {
		return s.deleteIn(ctx, q, profileID, token)
	})
}

// deleteIn removes a token inside q and queues its payload's removal.
func (s *Service) deleteIn(ctx context.Context, q privicore.Queries, profileID, token string) (command.Result, error) {
	t, err := s.owned(ctx, q, profileID, token)
	if err != nil {
		return command.Result{}, err
	}
	holders, err := q.BlobHolders(ctx, t.BlobID)
	if err != nil {
		return command.Result{}, err
	}
	if err := s.forget(ctx, q, t.BlobID); err != nil {
		return command.Result{}, err
	}
	return command.Result{After: func() { s.storage.KickAll(holders) }}, q.DeleteDataToken(ctx, t.ID)
}

// handleDelete applies a delete that a policy held for a vote, once approved.
func (s *Service) handleDelete(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p struct{ Token string }
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	return s.deleteIn(ctx, q, c.ProfileID, p.Token)
}
