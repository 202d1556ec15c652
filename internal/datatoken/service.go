// Package datatoken holds the rules of data tokens: reserve space, exchange
// a client-encrypted payload for a token (fanned out to every storage
// device), make it permanent with file meta, request the data back, update,
// classify, list, count and delete. The engine never stores payload bytes:
// its database keeps only the token record and the wrapped layer-2 key.
//
// One file per rule: reserve.go, exchange.go (and stream.go for streamed
// uploads), filemeta.go, request.go, update.go, meta.go, delete.go,
// sweep.go (expired reservations), query.go (downloads, listing,
// statistics).
package datatoken

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/layer2"
)

// Command types handled by this package.
const (
	CmdReserve  = "datatoken.reserve"
	CmdExchange = "datatoken.exchange"
	CmdRequest  = "datatoken.request"
	CmdUpdate   = "datatoken.update"
	CmdMeta     = "datatoken.update_meta"
	CmdRisk     = "datatoken.risk_meta"
	CmdDelete   = "datatoken.delete"
)

// Rejection reasons of this package.
const (
	ReasonReservationNotFound = "datatoken.reservation_not_found"
	ReasonReservationExpired  = "datatoken.reservation_expired"
	ReasonReservationUsed     = "datatoken.reservation_used"
	ReasonNotFound            = "datatoken.not_found"
)

// Limits.
const (
	MaxPayload     = 1 << 20  // bytes of ciphertext in an exchange
	InlineMax      = 64 << 10 // larger answers go through a download URL
	DefaultTTL     = 5        // minutes
	MaxTTL         = 1440     // minutes
	DownloadTTL    = 5 * time.Minute
	maxRiskFields  = 64
	maxRiskBytes   = 4096
	EventRequest   = "X-DPT-CAB-REQUEST-ID"
	EventStreamRdy = "STREAM-READY"
)

// Config configures the service.
type Config struct {
	MinAcks int // devices that must write durably before an exchange succeeds; default 1
	// PublicURL returns the base of download and upload URLs, e.g.
	// http://127.0.0.1:8009. It is asked each time a URL is made (the
	// engine knows it once its listener is bound); nil means "".
	PublicURL func() string
	Logger    *slog.Logger
}

// Service implements the data token rules.
type Service struct {
	store     privicore.Store
	cmds      *command.Processor
	storage   *fanout.Service
	sealer    *layer2.Sealer
	streamKey []byte // MAC key of upload credentials, derived from the master key
	cfg       Config
	log       *slog.Logger
	now       func() time.Time

	// The command types whose Prepare takes an input that is not in the
	// payload, by what it takes.
	exchange *command.Kind[*payloadIn]           // the layer-1 payload (exchange.go)
	stream   *command.Kind[*pushed]              // what an upload wrote (stream.go)
	update   *command.Kind[*payloadIn]           // the new payload, if any (update.go)
	request  *command.Kind[*privicore.DataToken] // the token as read at submit (request.go)
}

// New returns the service and registers its command handlers. sealer
// holds the engine's master key (layer 2).
func New(store privicore.Store, cmds *command.Processor, st *fanout.Service, sealer *layer2.Sealer, cfg Config) *Service {
	if cfg.MinAcks <= 0 {
		cfg.MinAcks = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PublicURL == nil {
		cfg.PublicURL = func() string { return "" }
	}
	s := &Service{store: store, cmds: cmds, storage: st, sealer: sealer, streamKey: sealer.Derive("privicore stream upload credentials"), cfg: cfg, log: cfg.Logger,
		now: func() time.Time { return time.Now().UTC() }}
	// Reservations, exchanges and requests need no ordering (an exchange's
	// rules are re-checked when it commits); changes of one token are
	// ordered by the token.
	cmds.HandleKeyed(CmdReserve, command.ByID, s.handleReserve)
	s.exchange = command.Register(cmds, CmdExchange, s.exchangeTask())
	s.stream = command.Register(cmds, CmdStreamExchange, s.streamTask())
	s.request = command.Register(cmds, CmdRequest, s.requestTask())
	s.update = command.Register(cmds, CmdUpdate, s.updateTask())
	cmds.HandleKeyed(CmdMeta, byToken, s.handleMeta)
	cmds.HandleKeyed(CmdRisk, byToken, s.handleRisk)
	// A delete runs at once, unless a policy holds it for a vote: then it
	// is queued and applied by this handler once approved.
	cmds.HandleKeyed(CmdDelete, byToken, s.handleDelete)
	for typ, event := range map[string]string{CmdExchange: privicore.EventDataExchange, CmdStreamExchange: privicore.EventDataExchange,
		CmdRequest: privicore.EventDataRequest, CmdUpdate: privicore.EventDataUpdate, CmdMeta: privicore.EventDataUpdate,
		CmdRisk: privicore.EventDataUpdate, CmdDelete: privicore.EventDataDelete} {
		cmds.Event(typ, command.Fires(event))
	}
	return s
}

// byToken orders the commands that change one token.
func byToken(c *privicore.Command) string {
	var p struct {
		Token string `json:"token"`
	}
	json.Unmarshal(c.Payload, &p)
	return c.ProfileID + "/" + p.Token
}

func randomToken(prefix string) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// owned returns the profile's token named by a temporary or permanent
// token (or id); the read is scoped to the profile, so another profile's
// token is ENOTFOUND like an unknown one.
func (s *Service) owned(ctx context.Context, q privicore.DataTokenStore, profileID, token string) (*privicore.DataToken, error) {
	if token == "" {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "data token not found")
	}
	t, err := q.FindDataToken(ctx, profileID, token)
	if err != nil {
		if privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return nil, err
		}
		return nil, privicore.Errorf(privicore.ENOTFOUND, "data token not found")
	}
	return t, nil
}

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
