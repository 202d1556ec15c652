package voting

import (
	"context"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Ad-hoc votes (spec §11): a question put to the profile's authenticators
// (voting/create), whose command's ack is the pool's outcome, and the
// cancellation of an open pool.

// Command types and the event of ad-hoc votes.
const (
	CmdCreateVote = "voting.create"
	CmdCancelVote = "voting.cancel"
	EventVote     = "voting.create"
)

// Rejection reasons of ad-hoc votes and pools.
const (
	ReasonPoolNotFound = "voting.pool_not_found"
	ReasonPoolClosed   = "voting.pool_closed"
)

type createPayload struct {
	PoolID          string   `json:"poolId"`
	ConfigurationID string   `json:"configurationId,omitempty"`
	Title           string   `json:"title"`
	Question        string   `json:"question"`
	Nonce           string   `json:"nonce,omitempty"`
	Skip            []string `json:"skip,omitempty"`
}

// voteSpec is the pool of an ad-hoc vote command.
func voteSpec(c *privicore.Command) (poolSpec, error) {
	var p createPayload
	if err := decode(c, &p); err != nil {
		return poolSpec{}, err
	}
	return poolSpec{event: EventVote, id: p.PoolID, configuration: p.ConfigurationID, title: p.Title, question: p.Question,
		nonce: p.Nonce, skip: p.Skip}, nil
}

// CreateVote validates and submits an ad-hoc vote: configuration (id or
// name; "" for the profile's strategy), question (1–2000 characters), title
// (≤ 200), skipped devices, nonce (≤ 256). Its command's ack comes when the
// pool resolves: 2 approved, 3 voting.<state>.
func (s *Service) CreateVote(ctx context.Context, profileID, configuration, title, question, nonce string, skip []string) (*privicore.Command, string, error) {
	v := privicore.ValidationErrors{}
	if n := utf8Len(question); n < 1 || n > 2000 {
		v.Add("question", "must be 1 to 2000 characters")
	}
	if utf8Len(title) > 200 {
		v.Add("title", "must be at most 200 characters")
	}
	if len(nonce) > 256 {
		v.Add("nonce", "must be at most 256 characters")
	}
	cfgID := ""
	if configuration != "" {
		cfg, err := s.store.FindVotingConfiguration(ctx, profileID, configuration)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			v.Add("votingConfigurationId", "is not one of your voting configurations")
		} else if err != nil {
			return nil, "", err
		} else {
			cfgID = cfg.ID
		}
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	poolID := command.NewID()
	c, err := s.cmds.Submit(ctx, profileID, CmdCreateVote, createPayload{PoolID: poolID, ConfigurationID: cfgID, Title: title,
		Question: question, Nonce: nonce, Skip: skip})
	if err != nil {
		return nil, "", err
	}
	// The pool opens now, so that its status is there with the 202 (the
	// command's first run finds it; if this fails, that run opens it).
	if spec, err := voteSpec(c); err == nil {
		if _, err := s.open(ctx, c, spec); err != nil && privicore.ErrorCode(err) != privicore.EREJECTED {
			s.log.Warn("opening a pool failed; its command will", "pool", poolID, "err", err)
		}
	}
	return c, poolID, nil
}

func (s *Service) handleCreateVote(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p createPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: p.PoolID}, nil
}

// Pool returns one of the profile's pools (another profile's is ENOTFOUND).
func (s *Service) Pool(ctx context.Context, profileID, id string) (*privicore.Pool, error) {
	pl, err := s.store.FindPool(ctx, profileID, id)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "pool not found")
	}
	return pl, err
}

type cancelPayload struct {
	PoolID string `json:"poolId"`
}

// CancelVote submits the cancellation of one of the profile's open pools:
// the held operation fails with voting.cancelled.
func (s *Service) CancelVote(ctx context.Context, profileID, poolID string) (*privicore.Command, error) {
	if poolID == "" {
		return nil, privicore.Invalid("poolId", "is required")
	}
	return s.cmds.Submit(ctx, profileID, CmdCancelVote, cancelPayload{PoolID: poolID})
}

func (s *Service) handleCancelVote(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p cancelPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	pl, err := q.FindPool(ctx, c.ProfileID, p.PoolID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return command.Result{}, privicore.Reject(ReasonPoolNotFound, "pool not found")
	} else if err != nil {
		return command.Result{}, err
	}
	if pl.State != privicore.PoolOpen {
		return command.Result{}, privicore.Reject(ReasonPoolClosed, "the pool already ended %s", pl.State)
	}
	after, err := s.finish(ctx, q, pl, privicore.PoolCancelled)
	if err != nil {
		return command.Result{}, err
	}
	// The pool's end is announced after the cancellation's own ack (which
	// waits for the cancellation's 202).
	return command.Result{After: func() { s.cmds.Later(c.ID, after) }}, nil
}
