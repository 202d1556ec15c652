package datatoken

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

type reservePayload struct {
	ID          string         `json:"id"`
	Application string         `json:"application,omitempty"`
	TempToken   string         `json:"tempToken"`
	Context     string         `json:"context"`
	TTL         int            `json:"ttl"`
	Meta        map[string]any `json:"meta,omitempty"`
}

// Reserve validates and submits a reservation: context 1–512 characters,
// ttl 1–1440 minutes (default 5). application is the OAuth application
// acting for the profile ("" for the profile itself): the token records it.
func (s *Service) Reserve(ctx context.Context, profileID, application, contextName string, ttl int, meta map[string]any) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if n := utf8.RuneCountInString(contextName); n < 1 || n > 512 {
		v.Add("context", "must be 1 to 512 characters")
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 1 || ttl > MaxTTL {
		v.Add("ttl", "must be 1 to 1440 minutes")
	}
	if b, _ := json.Marshal(meta); len(b) > 16<<10 {
		v.Add("meta", "must be at most 16 KiB of JSON")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdReserve, reservePayload{ID: ulid.Make().String(), Application: application,
		TempToken: randomToken("tmp-"), Context: contextName, TTL: ttl, Meta: meta})
}

func (s *Service) handleReserve(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p reservePayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	meta := map[string]any{}
	if p.Meta != nil {
		meta["data"] = p.Meta
	}
	return command.Result{}, q.CreateDataToken(ctx, &privicore.DataToken{ID: p.ID, ProfileID: c.ProfileID, TempToken: p.TempToken,
		ReservationID: c.ID, Context: p.Context, Meta: meta, State: privicore.TokenReserved, Application: p.Application,
		ExpiresAt: c.CreatedAt.Add(time.Duration(p.TTL) * time.Minute), CreatedAt: s.now(), UpdatedAt: s.now()})
}

// TemporaryToken returns the reservation's temporary token and a fresh
// single-use stream upload URL, or ENOTFOUND when unknown (or another
// profile's), not yet settled, expired or already used.
func (s *Service) TemporaryToken(ctx context.Context, profileID, commandID string) (token, stream string, err error) {
	t, err := s.store.FindDataTokenByReservation(ctx, profileID, commandID)
	if err != nil || t.State != privicore.TokenReserved || !s.now().Before(t.ExpiresAt) {
		if err != nil && privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return "", "", err
		}
		return "", "", privicore.Errorf(privicore.ENOTFOUND, "no usable reservation for that command")
	}
	return t.TempToken, s.uploadURL(t), nil
}

// checkReservation applies the reservation rules to t, read (with err) by
// key, its temporary token or id, scoped to the profile; r tells an
// expired reservation already swept (sweep.go) from an unknown one.
func (s *Service) checkReservation(ctx context.Context, r reservationReader, key string, t *privicore.DataToken, err error, profileID string) error {
	switch {
	case privicore.ErrorCode(err) == privicore.ENOTFOUND:
		return missingReservation(ctx, r, key, profileID)
	case err != nil:
		return err
	case t.State != privicore.TokenReserved:
		return privicore.Reject(ReasonReservationUsed, "reservation already used")
	case !s.now().Before(t.ExpiresAt):
		return privicore.Reject(ReasonReservationExpired, "reservation expired")
	}
	return nil
}
