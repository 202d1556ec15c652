package datatoken

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/layer2"
)

// The way of an exchanged payload, from the HTTP handler to the devices:
//
//  1. Exchange decodes and checks the layer-1 payload and submits the
//     command with the payload as its in-memory input (never written to
//     the database).
//  2. prepareExchange, inline in that call: the reservation must be open;
//     the payload is sealed (layer 2) and pushed to every storage device
//     (push).
//  3. applyExchange, in the write that records the command's outcome: the
//     reservation is filled with the blob and its wrapped key, and where
//     the blob is (and which devices still need it) is recorded. The 202
//     goes out only after this write: it means durably recorded.
//  4. On a rejection after the push (too few acks, the reservation used
//     meanwhile), compensatePush queues the blob's removal from the devices
//     that wrote it, in the write that records the rejection.
//
// A push too slow for the caller's 202 takes the queued path (the command
// recorded pending first), where Prepare pushes the same blob again with
// the devices' full time: the same sealed bytes under the same key
// (payloadIn), so the copies the first push left agree with what is
// recorded. If the engine restarts before then, the payload
// is gone: the exchange is rejected with storage.write_failed.
//
// When a policy on exchanges is active (the gate may hold the command for
// a vote), the exchange is queued and steps 2–4 are split by the vote:
// Prepare pushes before the vote, and what it wrote (pushed) is recorded
// with the command (command.Task.StageBeforeGate), the payload then
// dropped from memory. The blob is on the devices but unreadable until
// Apply records its wrapped key: whichever replica ends the command once
// the vote is decided applies the recorded push on approval, or queues
// its removal on a rejection (compensatePush), so a replica that stops or
// dies while the vote runs loses nothing.

type exchangePayload struct {
	TempToken string `json:"tempToken"`
	Size      int    `json:"size"`
	BlobID    string `json:"blobId"`
}

// pushed is what a Prepare wrote to the devices. A held exchange records
// it with its command (command.Task.StageBeforeGate), as JSON: the blob,
// its layer-2 key wrapped under the master key (what Apply stores anyway;
// without it the blob is unreadable), and who wrote it.
type pushed struct {
	BlobID  string   `json:"blob"`
	Wrapped []byte   `json:"wrapped,omitempty"`
	Size    int64    `json:"size,omitempty"`
	Acked   []string `json:"acked,omitempty"`
	Missed  []string `json:"missed,omitempty"`
	Fail    string   `json:"fail,omitempty"`   // a rejection to record after compensating
	Chunks  int      `json:"chunks,omitempty"` // streamed payloads: how many chunks
	// Token is the reservation as this process's Prepare read it
	// (exchange); not recorded: Apply reads it again without it.
	Token *privicore.DataToken `json:"-"`
}

// Exchange validates a layer-1 payload (base64 of [IV][ciphertext][tag],
// 28 bytes to 1 MiB) and submits its exchange for the reservation
// temporaryToken. The payload stays in memory until the devices have it.
func (s *Service) Exchange(ctx context.Context, profileID, temporaryToken, data string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if temporaryToken == "" {
		v.Add("temporaryTokenSpace", "is required")
	}
	payload, err := decodePayload(data)
	if err != nil {
		v.Add("data", err.Error())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.exchange.Submit(ctx, profileID, exchangePayload{TempToken: temporaryToken, Size: len(payload), BlobID: ulid.Make().String()}, newPayloadIn(payload))
}

// exchangeTask runs an exchange inline (one write instead of two): its
// Prepare writes the blob to the devices, but a blob is unreadable without
// its layer-2 key, which only the write records. If the engine dies before
// the write, the caller got no 202 and the blob is dead weight on the
// devices (as when it dies during a queued exchange's Prepare).
func (s *Service) exchangeTask() command.Task[*payloadIn, *pushed] {
	return command.Task[*payloadIn, *pushed]{Key: command.ByID, PrepareInline: true, StageBeforeGate: true,
		Prepare: s.prepareExchange, Apply: s.applyExchange, Compensate: s.compensatePush}
}

func decodePayload(data string) ([]byte, error) {
	if data == "" {
		return nil, errString("is required")
	}
	if len(data) > base64.StdEncoding.EncodedLen(MaxPayload)+4 {
		return nil, errString("must be at most 1 MiB of ciphertext")
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil {
		return nil, errString("must be standard base64")
	}
	if len(b) > MaxPayload {
		return nil, errString("must be at most 1 MiB of ciphertext")
	}
	if err := keys.CheckWire(b); err != nil {
		return nil, err
	}
	return b, nil
}

// prepareExchange checks the reservation and pushes payload (has: this
// process still holds it) to the devices.
func (s *Service) prepareExchange(ctx context.Context, c *privicore.Command, payload *payloadIn, has bool) (*pushed, error) {
	var p exchangePayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	t, err := s.store.FindDataToken(ctx, c.ProfileID, p.TempToken)
	if err := s.checkReservation(ctx, s.store, p.TempToken, t, err, c.ProfileID); err != nil {
		return nil, err
	}
	if !has {
		// The engine restarted before the payload reached the devices.
		return nil, privicore.Reject(fanout.ReasonWriteFailed, "the payload was lost in a restart; exchange it again")
	}
	pu, err := s.push(ctx, c.ProfileID, p.BlobID, payload)
	if err == nil && pu.Fail != "" && ctx.Err() != nil {
		// Inline, out of time (devices slow): the queued path pushes the
		// same blob again with the devices' full time.
		return nil, ctx.Err()
	}
	if pu != nil {
		pu.Token = t
	}
	return pu, err
}

// payloadIn is an exchange's or update's layer-1 payload while this
// process holds it (the command's in-memory input). It is sealed (layer 2)
// once, at its first push: every later push of its blob (the queued path
// after an inline attempt out of time, a retry after a transient failure)
// sends the same bytes under the same wrapped key. With a fresh key per
// push, a device that kept an earlier push's copy of the blob would hold
// what the recorded key cannot open.
type payloadIn struct {
	mu            sync.Mutex
	plain         []byte // until sealed
	size          int64
	blob, wrapped []byte
}

func newPayloadIn(plain []byte) *payloadIn {
	if plain == nil {
		return nil
	}
	return &payloadIn{plain: plain, size: int64(len(plain))}
}

// sealed returns in sealed as blob blobID, sealing it at the first call.
func (in *payloadIn) sealed(s *layer2.Sealer, blobID string) (blob, wrapped []byte, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.blob == nil {
		if in.blob, in.wrapped, err = s.SealBlob(blobID, in.plain); err != nil {
			return nil, nil, err
		}
		in.plain = nil
	}
	return in.blob, in.wrapped, nil
}

// push seals in as blob blobID (once) and fans it out.
func (s *Service) push(ctx context.Context, profileID, blobID string, in *payloadIn) (*pushed, error) {
	blob, wrapped, err := in.sealed(s.sealer, blobID)
	if err != nil {
		return nil, err
	}
	acked, missed, err := s.storage.Push(ctx, profileID, blobID, blob)
	if err != nil {
		return nil, err
	}
	p := &pushed{BlobID: blobID, Wrapped: wrapped, Size: in.size, Acked: acked, Missed: missed}
	if len(acked) < s.cfg.MinAcks {
		p.Fail = fanout.ReasonWriteFailed
	}
	return p, nil
}

// applyExchange fills the reservation with the pushed blob and records
// where it is.
func (s *Service) applyExchange(ctx context.Context, q privicore.Queries, c *privicore.Command, p *pushed) (command.Result, error) {
	if p.Fail != "" {
		return command.Result{}, privicore.Reject(p.Fail, "too few storage devices wrote the data")
	}
	// The reservation read in Prepare (in this process; a staged push's
	// is read here) is filled only if it is still open; if not, read it
	// again to say why.
	if p.Token == nil {
		var pl exchangePayload
		if err := decode(c, &pl); err != nil {
			return command.Result{}, err
		}
		cur, err := q.FindDataToken(ctx, c.ProfileID, pl.TempToken)
		if err := s.checkReservation(ctx, q, pl.TempToken, cur, err, c.ProfileID); err != nil {
			return command.Result{}, err
		}
		p.Token = cur
	}
	t := *p.Token
	t.BlobID, t.WrappedKey, t.Size = p.BlobID, p.Wrapped, p.Size
	if err := q.FillReservation(ctx, &t, s.now()); privicore.ErrorCode(err) == privicore.ECONFLICT {
		cur, err := q.FindDataToken(ctx, c.ProfileID, t.ID)
		if err := s.checkReservation(ctx, q, t.ID, cur, err, c.ProfileID); err != nil {
			return command.Result{}, err
		}
		return command.Result{}, privicore.Reject(ReasonReservationUsed, "reservation already used")
	} else if err != nil {
		return command.Result{}, err
	}
	if err := s.record(ctx, q, p); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: t.TempToken, After: func() { s.storage.KickAll(p.Missed) }}, nil
}

// record notes where the blob is and queues it for the devices that missed it.
func (s *Service) record(ctx context.Context, q privicore.Queries, p *pushed) error {
	if err := q.AddDeviceBlob(ctx, p.BlobID, p.Size, p.Acked...); err != nil {
		return err
	}
	for _, id := range p.Missed {
		if err := q.AddOutbox(ctx, id, p.BlobID, fanout.OpStore, s.now()); err != nil {
			return err
		}
	}
	return nil
}

// compensatePush queues the removal of a blob that was pushed to devices
// by a command that was then rejected: from the devices that acknowledged
// it and from those that missed it, since a device that timed out may
// still have written it (a removal of a blob a device never held is a
// no-op there).
func (s *Service) compensatePush(ctx context.Context, q privicore.Queries, _ *privicore.Command, p *pushed) error {
	if p == nil {
		return nil
	}
	for _, id := range append(append([]string(nil), p.Acked...), p.Missed...) {
		if err := q.AddOutbox(ctx, id, p.BlobID, fanout.OpDelete, s.now()); err != nil {
			return err
		}
	}
	return nil
}
