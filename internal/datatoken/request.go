package datatoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/command"
)

type requestPayload struct {
	Token     string `json:"token"`
	RequestID string `json:"requestId"`
}

// RequestEvent is the data of an X-DPT-CAB-REQUEST-ID event.
type RequestEvent = api.RequestEvent

// RequestData submits a retrieval of a permanent token; the answer comes as
// an X-DPT-CAB-REQUEST-ID event. ENOTFOUND for an unknown token.
func (s *Service) RequestData(ctx context.Context, profileID, token string) (*privicore.Command, string, error) {
	if !strings.HasPrefix(token, "dtk-") {
		return nil, "", privicore.Invalid("token", "must be a permanent data token (dtk-…)")
	}
	t, err := s.owned(ctx, s.store, profileID, token)
	if err != nil {
		return nil, "", err
	}
	if t.State != privicore.TokenStored {
		return nil, "", privicore.Errorf(privicore.ENOTFOUND, "data token not found")
	}
	reqID := uuid.Must(uuid.NewV7()).String()
	// The record read here rides along in memory; after a restart Prepare reads it again.
	c, err := s.request.Submit(ctx, profileID, requestPayload{Token: token, RequestID: reqID}, t)
	return c, reqID, err
}

// requestTask reads from the devices, then is written once with its
// outcome; the data goes out once that is durable (the release, run as
// the Result's After).
func (s *Service) requestTask() command.Task[*privicore.DataToken, func()] {
	return command.Task[*privicore.DataToken, func()]{Key: command.ByID, PrepareInline: true, Prepare: s.prepareRequest,
		Apply: func(_ context.Context, _ privicore.Queries, _ *privicore.Command, release func()) (command.Result, error) {
			return command.Result{After: release}, nil
		}}
}

// prepareRequest reads the payload of t (the token as RequestData read it;
// read again when this process no longer has it) from the devices, or
// makes its download URL when it is streamed. It returns the release of
// the data, which publishes the events.
func (s *Service) prepareRequest(ctx context.Context, c *privicore.Command, t *privicore.DataToken, has bool) (func(), error) {
	var p requestPayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	fail := func(reason string) (func(), error) {
		if err := ctx.Err(); err != nil {
			// Cut short (an inline attempt): the queued path tries again
			// and is the one that answers.
			return nil, err
		}
		s.cmds.Publish(c.ID, c.ProfileID, RequestEvent{Type: EventRequest, ID: p.RequestID, CommandStatus: 3, Body: reason})
		return nil, privicore.Reject(reason, "%s", reason)
	}
	if !has || t == nil {
		var err error
		t, err = s.owned(ctx, s.store, c.ProfileID, p.Token)
		if err != nil && privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return nil, err
		}
	}
	if t == nil || t.State != privicore.TokenStored {
		return fail(ReasonNotFound)
	}
	ev := RequestEvent{Type: EventRequest, ID: p.RequestID, CommandStatus: 2, DataContext: t.Context}
	var payload []byte
	if t.Chunks == 0 || t.Size <= InlineMax {
		tr, err := s.transfer(ctx, t)
		if err != nil {
			if privicore.ErrorReason(err) != "" {
				return fail(privicore.ErrorReason(err))
			}
			return nil, err
		}
		var buf bytes.Buffer
		if err := tr.WriteTo(&buf); err != nil {
			if privicore.ErrorReason(err) != "" {
				return fail(privicore.ErrorReason(err))
			}
			return nil, err
		}
		payload = buf.Bytes()
	}
	if payload != nil && len(payload) <= InlineMax {
		ev.Body = base64.StdEncoding.EncodeToString(payload)
		return func() { s.cmds.Publish(c.ID, c.ProfileID, ev) }, nil
	}
	url, err := s.downloadURL(ctx, c.ProfileID, t.BlobID)
	if err != nil {
		return nil, err
	}
	ev.OutputType, ev.Body = 1, url
	return func() {
		s.cmds.Publish(c.ID, c.ProfileID, ev)
		s.cmds.Publish(c.ID, c.ProfileID, map[string]string{"type": EventStreamRdy, "id": p.RequestID, "requestId": p.RequestID, "streamUrl": url})
	}, nil
}
