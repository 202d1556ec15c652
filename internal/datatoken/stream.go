package datatoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
)

// CmdStreamExchange is the exchange of a streamed upload.
const CmdStreamExchange = "datatoken.stream_exchange"

// ChunkSize is the plaintext size of a streamed payload's chunks.
const ChunkSize = 1 << 20

// uploadAuth is a reservation's stream upload credential: its id and a MAC
// of it under a key derived from the master key. Nothing is stored: the
// reservation itself makes it single-use (once its data is in, it is used)
// and bounds its life (it expires with the reservation).
func (s *Service) uploadAuth(reservationID string) string {
	m := hmac.New(sha256.New, s.streamKey)
	m.Write([]byte(reservationID))
	return reservationID + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// uploadURL is the stream upload URL of a reservation.
func (s *Service) uploadURL(t *privicore.DataToken) string {
	return s.cfg.PublicURL() + "/upstream/?auth=" + url.QueryEscape(s.uploadAuth(t.ID))
}

// reservationOf checks an upload credential and returns its reservation id.
func (s *Service) reservationOf(auth string) (string, bool) {
	id, _, ok := strings.Cut(auth, ".")
	if !ok || len(auth) > 256 {
		return "", false
	}
	return id, hmac.Equal([]byte(auth), []byte(s.uploadAuth(id)))
}

type streamPayload struct {
	ReservationID string `json:"reservation"`
	BlobID        string `json:"blobId"`
}

// Upload stores a streamed payload (layer-1 ciphertext of any size, read
// from body chunk by chunk) for the reservation of an upload credential,
// and submits its exchange. Memory holds at most two chunks. An unknown or
// forged credential is ENOTFOUND; a body shorter than the layer-1 wire is
// EINVALID; the reservation's rules (used, expired) and the devices' are
// rejections on the ack. On success the token becomes permanent and the
// ack's body is the dtk-… token.
func (s *Service) Upload(ctx context.Context, secret string, body io.Reader) (*privicore.Command, error) {
	missing := privicore.Errorf(privicore.ENOTFOUND, "upload link unknown")
	rid, ok := s.reservationOf(secret)
	if !ok {
		return nil, missing
	}
	// The credential (its MAC) is the authority here: the request has no
	// profile, the reservation's record gives it.
	t, err := s.store.FindDataTokenByID(ctx, rid)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, missing
	} else if err != nil {
		return nil, err
	}
	profileID := t.ProfileID
	payload := streamPayload{ReservationID: rid, BlobID: ulid.Make().String()}
	submit := func(p *pushed) (*privicore.Command, error) {
		return s.stream.Submit(ctx, profileID, payload, p)
	}
	if err := s.checkReservation(ctx, s.store, rid, t, nil, profileID); err != nil {
		if reason := privicore.ErrorReason(err); reason != "" {
			return submit(&pushed{Fail: reason})
		}
		return nil, err
	}
	st, err := s.storage.OpenStream(ctx, profileID, payload.BlobID)
	if err != nil {
		if reason := privicore.ErrorReason(err); reason != "" {
			return submit(&pushed{Fail: reason})
		}
		return nil, err
	}
	sealing, err := s.sealer.NewStream(payload.BlobID)
	if err != nil {
		return nil, err
	}
	// Read one chunk ahead, to know which chunk is the last.
	cur, next := make([]byte, ChunkSize), make([]byte, ChunkSize)
	n, err := io.ReadFull(body, cur)
	var size int64
	seq := 0
	for {
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, privicore.Invalid("body", "could not be read: "+err.Error())
		}
		last := err != nil
		var m int
		var nerr error
		if !last {
			m, nerr = io.ReadFull(body, next)
			if m == 0 {
				last = true
			}
		}
		if last && size+int64(n) < keys.MinWireSize {
			s.compensateStream(ctx, st, payload.BlobID)
			return nil, privicore.Invalid("body", keys.ErrWireTooShort.Error())
		}
		sealed, serr := sealing.Seal(seq, cur[:n])
		if serr != nil {
			return nil, serr
		}
		st.Send(ctx, sealed, last)
		size += int64(n)
		seq++
		if last {
			break
		}
		cur, next = next, cur
		n, err = m, nerr
	}
	wrapped, err := sealing.Wrapped()
	if err != nil {
		return nil, err
	}
	p := &pushed{BlobID: payload.BlobID, Wrapped: wrapped, Size: size, Chunks: seq, Acked: st.Acked(), Missed: st.Missed}
	if len(p.Acked) < s.cfg.MinAcks {
		p.Fail = "storage.write_failed"
	}
	return submit(p)
}

// compensateStream queues the removal of a partial upload.
func (s *Service) compensateStream(ctx context.Context, st *fanout.Stream, blobID string) {
	s.store.Write(ctx, func(q privicore.Queries) error {
		return s.compensatePush(ctx, q, nil, &pushed{BlobID: blobID, Acked: st.Acked(), Missed: st.Missed})
	})
}

// streamTask records an upload that Upload already wrote to the devices:
// its input is what the upload wrote (or the rejection it met). It is
// queued, not inline: Upload submits it once the body is in. Held by a
// vote, it is recorded with the command first (StageBeforeGate), so that
// any replica ends it once the vote is decided.
func (s *Service) streamTask() command.Task[*pushed, *pushed] {
	return command.Task[*pushed, *pushed]{Key: command.ByID, StageBeforeGate: true, Prepare: s.prepareStream, Apply: s.applyStream, Compensate: s.compensatePush}
}

func (s *Service) prepareStream(_ context.Context, _ *privicore.Command, p *pushed, has bool) (*pushed, error) {
	if !has {
		// The engine restarted between the upload and its record.
		return nil, privicore.Reject("storage.write_failed", "the upload was interrupted by a restart; upload it again")
	}
	return p, nil
}

func (s *Service) applyStream(ctx context.Context, q privicore.Queries, c *privicore.Command, p *pushed) (command.Result, error) {
	if p.Fail != "" {
		return command.Result{}, privicore.Reject(p.Fail, "%s", p.Fail)
	}
	var pl streamPayload
	if err := decode(c, &pl); err != nil {
		return command.Result{}, err
	}
	t, err := q.FindDataToken(ctx, c.ProfileID, pl.ReservationID)
	if err := s.checkReservation(ctx, q, pl.ReservationID, t, err, c.ProfileID); err != nil {
		return command.Result{}, err
	}
	t.State, t.BlobID, t.WrappedKey, t.Size, t.Chunks = privicore.TokenStored, p.BlobID, p.Wrapped, p.Size, p.Chunks
	t.Token, t.ExpiresAt, t.UpdatedAt = randomToken("dtk-"), time.Time{}, s.now()
	file := map[string]any{"size": p.Size}
	t.Meta["file"] = file
	if err := q.UpdateDataToken(ctx, t); err != nil {
		return command.Result{}, err
	}
	if err := s.record(ctx, q, p); err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: t.Token, After: func() { s.storage.KickAll(p.Missed) }}, nil
}

// Transfer is a download: its size, and a writer of its bytes.
type Transfer struct {
	Size    int64
	WriteTo func(w io.Writer) error
}

// transfer prepares the download of a token's layer-1 bytes.
func (s *Service) transfer(ctx context.Context, t *privicore.DataToken) (*Transfer, error) {
	if t.Chunks == 0 {
		var payload []byte
		if _, err := s.storage.Fetch(ctx, t.ProfileID, t.BlobID, func(b []byte) bool {
			out, err := s.sealer.OpenBlob(t.BlobID, t.WrappedKey, b)
			payload = out
			return err == nil
		}); err != nil {
			return nil, err
		}
		return &Transfer{Size: int64(len(payload)), WriteTo: func(w io.Writer) error { _, err := w.Write(payload); return err }}, nil
	}
	return &Transfer{Size: t.Size, WriteTo: func(w io.Writer) error {
		return s.storage.ReadChunks(ctx, t.ProfileID, t.BlobID, t.Chunks,
			func(seq int, data []byte) ([]byte, error) {
				return s.sealer.OpenChunk(t.BlobID, t.WrappedKey, seq, data)
			},
			func(plain []byte) error { _, err := w.Write(plain); return err })
	}}, nil
}
