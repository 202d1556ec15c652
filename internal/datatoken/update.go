package datatoken

import (
	"context"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/fanout"
)

type updatePayload struct {
	Token   string         `json:"token"`
	HasData bool           `json:"hasData"`
	BlobID  string         `json:"blobId,omitempty"`
	Size    int            `json:"size,omitempty"`
	Meta    map[string]any `json:"meta,omitempty"`
}

// Update submits a new payload and/or meta objects for a token. Given meta
// objects ("file", "information_security_risk", "data") replace the stored
// ones; omitted ones stay. A new payload replaces the old on every device.
func (s *Service) Update(ctx context.Context, profileID, token, data string, meta map[string]any) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if token == "" {
		v.Add("dataToken", "is required")
	}
	for k, o := range meta {
		if k != "file" && k != "information_security_risk" && k != "data" {
			v.Add("meta", "may hold only the objects file, information_security_risk and data")
		} else if _, ok := o.(map[string]any); !ok {
			v.Add("meta."+k, "must be an object")
		}
	}
	var payload []byte
	if data != "" {
		var err error
		if payload, err = decodePayload(data); err != nil {
			v.Add("data", err.Error())
		}
	}
	if data == "" && len(meta) == 0 {
		v.Add("data", "give data, meta or both")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.owned(ctx, s.store, profileID, token); err != nil {
		return nil, err
	}
	p := updatePayload{Token: token, HasData: payload != nil, Size: len(payload), Meta: meta}
	if payload != nil {
		p.BlobID = ulid.Make().String()
	}
	return s.update.Submit(ctx, profileID, p, newPayloadIn(payload))
}

// updateTask pushes a new payload (the command's input) to the devices
// (Prepare, queued), then swaps the token's blob and meta (Apply); on a
// rejection after the push the new blob's removal is queued. When a vote
// may hold it, it is staged as an exchange is: the new payload is on the
// devices (unreadable until Apply records its key) before the vote, so
// that any replica can finish the update.
func (s *Service) updateTask() command.Task[*payloadIn, *pushed] {
	return command.Task[*payloadIn, *pushed]{Key: byToken, StageBeforeGate: true, Prepare: s.prepareUpdate, Apply: s.applyUpdate, Compensate: s.compensatePush}
}

func (s *Service) prepareUpdate(ctx context.Context, c *privicore.Command, payload *payloadIn, has bool) (*pushed, error) {
	var p updatePayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	if !p.HasData {
		return &pushed{}, nil
	}
	if !has {
		return nil, privicore.Reject(fanout.ReasonWriteFailed, "the payload was lost in a restart; update it again")
	}
	return s.push(ctx, c.ProfileID, p.BlobID, payload)
}

// applyUpdate replaces the token's payload with the pushed one (the old
// blob's removal queued on every device holding it) and its given meta
// objects.
func (s *Service) applyUpdate(ctx context.Context, q privicore.Queries, c *privicore.Command, p *pushed) (command.Result, error) {
	if p.Fail != "" {
		return command.Result{}, privicore.Reject(p.Fail, "too few storage devices wrote the data")
	}
	var pl updatePayload
	if err := decode(c, &pl); err != nil {
		return command.Result{}, err
	}
	t, err := s.owned(ctx, q, c.ProfileID, pl.Token)
	if err != nil {
		return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
	}
	kick := p.Missed
	if pl.HasData {
		if t.State != privicore.TokenStored {
			return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
		}
		old, err := q.BlobHolders(ctx, t.BlobID)
		if err != nil {
			return command.Result{}, err
		}
		kick = append(kick, old...)
		if err := s.forget(ctx, q, t.BlobID); err != nil {
			return command.Result{}, err
		}
		t.BlobID, t.WrappedKey, t.Size = p.BlobID, p.Wrapped, p.Size
		if err := s.record(ctx, q, p); err != nil {
			return command.Result{}, err
		}
	}
	for k, o := range pl.Meta {
		t.Meta[k] = o
	}
	t.UpdatedAt = s.now()
	if err := q.UpdateDataToken(ctx, t); err != nil {
		return command.Result{}, err
	}
	return command.Result{After: func() { s.storage.KickAll(kick) }}, nil
}

// forget queues the removal of blobID from every device holding it.
func (s *Service) forget(ctx context.Context, q privicore.Queries, blobID string) error {
	if blobID == "" {
		return nil
	}
	holders, err := q.BlobHolders(ctx, blobID)
	if err != nil {
		return err
	}
	for _, id := range holders {
		if err := q.AddOutbox(ctx, id, blobID, fanout.OpDelete, s.now()); err != nil {
			return err
		}
	}
	return nil
}
