// Package datatoken holds the rules of data tokens: reserve space, exchange
// a client-encrypted payload for a token (fanned out to every storage
// device), make it permanent with file meta, request the data back, update,
// classify, list, count and delete. The engine never stores payload bytes:
// its database keeps only the token record and the wrapped layer-2 key.
package datatoken

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/keys"
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
	MinAcks   int    // devices that must write durably before an exchange succeeds; default 1
	PublicURL string // base of download URLs, e.g. http://127.0.0.1:8009
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
	s := &Service{store: store, cmds: cmds, storage: st, sealer: sealer, streamKey: sealer.Derive("privicore stream upload credentials"), cfg: cfg, log: cfg.Logger,
		now: func() time.Time { return time.Now().UTC() }}
	apply := func(h command.Handler) func(context.Context, privicore.Queries, *privicore.Command, any) (command.Result, error) {
		return func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ any) (command.Result, error) {
			return h(ctx, q, c)
		}
	}
	// Reservations, exchanges and requests need no ordering (an exchange's
	// rules are re-checked when it commits); changes of one token are
	// ordered by the token.
	cmds.HandleSteps(CmdReserve, command.Steps{Key: command.ByID, Apply: apply(s.handleReserve)})
	// An exchange runs inline (one write instead of two): its Prepare
	// writes the blob to the devices, but a blob is unreadable without its
	// layer-2 key, which only the write records. If the engine dies before
	// the write, the caller got no 202 and the blob is dead weight on the
	// devices (as when it dies during a queued exchange's Prepare).
	cmds.HandleSteps(CmdExchange, command.Steps{Key: command.ByID, PrepareInline: true,
		Prepare: s.prepareExchange, Apply: s.applyExchange, Compensate: s.compensatePush})
	// A request reads from the devices, then is written once with its
	// outcome; the data goes out once that is durable (release, in After).
	cmds.HandleSteps(CmdRequest, command.Steps{Key: command.ByID, Prepare: s.prepareRequest, PrepareInline: true,
		Apply: func(_ context.Context, _ privicore.Queries, _ *privicore.Command, prepared any) (command.Result, error) {
			release, _ := prepared.(func())
			return command.Result{After: release}, nil
		}})
	cmds.HandleSteps(CmdStreamExchange, command.Steps{Key: command.ByID, Prepare: s.prepareStream, Apply: s.applyStream, Compensate: s.compensatePush})
	cmds.HandleSteps(CmdUpdate, command.Steps{Key: byToken, Prepare: s.prepareUpdate, Apply: s.applyUpdate, Compensate: s.compensatePush})
	cmds.HandleSteps(CmdMeta, command.Steps{Key: byToken, Apply: apply(s.handleMeta)})
	cmds.HandleSteps(CmdRisk, command.Steps{Key: byToken, Apply: apply(s.handleRisk)})
	// A delete runs at once, unless a policy holds it for a vote: then it
	// is queued and applied by this handler once approved.
	cmds.HandleSteps(CmdDelete, command.Steps{Key: byToken, Apply: apply(func(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
		var p struct{ Token string }
		if err := decode(c, &p); err != nil {
			return command.Result{}, err
		}
		return s.deleteIn(ctx, q, c.ProfileID, p.Token)
	})})
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

// SetPublicURL sets the base of download URLs (once the listener is bound).
func (s *Service) SetPublicURL(u string) { s.cfg.PublicURL = u }

func randomToken(prefix string) string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// owned returns the profile's token named by a temporary or permanent
// token (or id); another profile's is ENOTFOUND.
func (s *Service) owned(ctx context.Context, q privicore.Queries, profileID, token string) (*privicore.DataToken, error) {
	if token == "" {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "data token not found")
	}
	t, err := q.FindDataToken(ctx, token)
	if err != nil || t.ProfileID != profileID {
		if err != nil && privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return nil, err
		}
		return nil, privicore.Errorf(privicore.ENOTFOUND, "data token not found")
	}
	return t, nil
}

// ---- reserve ----

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
// single-use stream upload URL, or ENOTFOUND when unknown, not yet
// settled, expired or already used.
func (s *Service) TemporaryToken(ctx context.Context, profileID, commandID string) (token, stream string, err error) {
	t, err := s.store.FindDataTokenByReservation(ctx, commandID)
	if err != nil || t.ProfileID != profileID || t.State != privicore.TokenReserved || !s.now().Before(t.ExpiresAt) {
		if err != nil && privicore.ErrorCode(err) != privicore.ENOTFOUND {
			return "", "", err
		}
		return "", "", privicore.Errorf(privicore.ENOTFOUND, "no usable reservation for that command")
	}
	return t.TempToken, s.uploadURL(t), nil
}

// ---- exchange ----

type exchangePayload struct {
	TempToken string `json:"tempToken"`
	Size      int    `json:"size"`
	BlobID    string `json:"blobId"`
}

// pushed is what Prepare wrote to the devices.
type pushed struct {
	BlobID  string
	Wrapped []byte
	Size    int64
	Acked   []string
	Missed  []string
	Fail    string               // a rejection to record after compensating
	Chunks  int                  // streamed payloads: how many chunks
	Token   *privicore.DataToken // the reservation as Prepare read it (exchange)
	TokenID string               // the data token updated (update-data)
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
	return s.cmds.SubmitAttached(ctx, profileID, CmdExchange, exchangePayload{TempToken: temporaryToken, Size: len(payload), BlobID: ulid.Make().String()}, payload)
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

type errString string

func (e errString) Error() string { return string(e) }

// checkReservation applies the reservation rules to t, read (with err) by
// key, its temporary token or id; r tells an expired reservation already
// swept (tombstone.go) from an unknown one.
func (s *Service) checkReservation(ctx context.Context, r reservationReader, key string, t *privicore.DataToken, err error, profileID string) error {
	switch {
	case privicore.ErrorCode(err) == privicore.ENOTFOUND || (err == nil && t.ProfileID != profileID):
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

func (s *Service) prepareExchange(ctx context.Context, c *privicore.Command) (any, error) {
	var p exchangePayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	t, err := s.store.FindDataToken(ctx, p.TempToken)
	if err := s.checkReservation(ctx, s.store, p.TempToken, t, err, c.ProfileID); err != nil {
		return nil, err
	}
	att, ok := s.cmds.Attachment(c)
	if !ok {
		// The engine restarted before the payload reached the devices.
		return nil, privicore.Reject(fanout.ReasonWriteFailed, "the payload was lost in a restart; exchange it again")
	}
	pu, err := s.push(ctx, c.ProfileID, p.BlobID, att.([]byte))
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

// push seals payload as blob blobID and fans it out.
func (s *Service) push(ctx context.Context, profileID, blobID string, payload []byte) (*pushed, error) {
	blob, wrapped, err := s.sealer.SealBlob(blobID, payload)
	if err != nil {
		return nil, err
	}
	acked, missed, err := s.storage.Push(ctx, profileID, blobID, blob)
	if err != nil {
		return nil, err
	}
	p := &pushed{BlobID: blobID, Wrapped: wrapped, Size: int64(len(payload)), Acked: acked, Missed: missed}
	if len(acked) < s.cfg.MinAcks {
		p.Fail = fanout.ReasonWriteFailed
	}
	return p, nil
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

func (s *Service) applyExchange(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (command.Result, error) {
	p := prepared.(*pushed)
	if p.Fail != "" {
		return command.Result{}, privicore.Reject(p.Fail, "too few storage devices wrote the data")
	}
	// The reservation read in Prepare is filled only if it is still open;
	// if not, read it again to say why.
	t := *p.Token
	t.BlobID, t.WrappedKey, t.Size = p.BlobID, p.Wrapped, p.Size
	if err := q.FillReservation(ctx, &t, s.now()); privicore.ErrorCode(err) == privicore.ECONFLICT {
		cur, err := q.FindDataToken(ctx, t.ID)
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

// compensatePush queues the removal of a blob that was written to devices
// by a command that was then rejected.
func (s *Service) compensatePush(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error {
	p, ok := prepared.(*pushed)
	if !ok || p == nil {
		return nil
	}
	for _, id := range p.Acked {
		if err := q.AddOutbox(ctx, id, p.BlobID, fanout.OpDelete, s.now()); err != nil {
			return err
		}
	}
	return nil
}

// ---- file meta (synchronous) ----

// FileMeta is a configure-file-meta request.
type FileMeta struct {
	Token, FileName, Extension, Context, Path string
	Size                                      *int64
}

// ConfigureFileMeta sets the file meta of an exchanged token and makes it
// permanent, returning the dtk-… token. ENOTFOUND for an unknown token,
// ECONFLICT while the exchange has not finished.
func (s *Service) ConfigureFileMeta(ctx context.Context, profileID string, m FileMeta) (string, error) {
	v := privicore.ValidationErrors{}
	if m.Token == "" {
		v.Add("token", "is required")
	}
	if m.Size != nil && *m.Size < 0 {
		v.Add("size", "must be an integer ≥ 0")
	}
	if m.Context != "" && utf8.RuneCountInString(m.Context) > 512 {
		v.Add("context", "must be 1 to 512 characters")
	}
	for f, val := range map[string]string{"fileName": m.FileName, "extension": m.Extension, "path": m.Path} {
		if utf8.RuneCountInString(val) > 1024 {
			v.Add(f, "must be at most 1024 characters")
		}
	}
	if err := v.Err(); err != nil {
		return "", err
	}
	// Read outside the writer; the update then applies only if nobody
	// changed the token meanwhile (its updated_at is the version), else it
	// is redone inside the transaction.
	t, err := s.owned(ctx, s.store, profileID, m.Token)
	if err != nil {
		return "", err
	}
	token, err := s.applyFileMeta(t, m)
	if err != nil {
		return "", err
	}
	version := t.UpdatedAt
	t.UpdatedAt = s.now()
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		return q.UpdateDataTokenIf(ctx, t, version, fileMetaFields...)
	})
	if privicore.ErrorCode(err) != privicore.ECONFLICT {
		return token, err
	}
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		t, err := s.owned(ctx, q, profileID, m.Token)
		if err != nil {
			return err
		}
		if token, err = s.applyFileMeta(t, m); err != nil {
			return err
		}
		t.UpdatedAt = s.now()
		return q.UpdateDataToken(ctx, t, fileMetaFields...)
	})
	return token, err
}

// fileMetaFields are what configure-file-meta writes.
var fileMetaFields = []privicore.DataTokenField{privicore.FieldToken, privicore.FieldExpiresAt, privicore.FieldMeta, privicore.FieldContext, privicore.FieldUpdatedAt}

// applyFileMeta sets m on t (making it permanent) and returns its dtk-… token.
func (s *Service) applyFileMeta(t *privicore.DataToken, m FileMeta) (string, error) {
	if t.State != privicore.TokenStored {
		return "", privicore.Errorf(privicore.ECONFLICT, "the exchange has not finished")
	}
	if t.Token == "" {
		if !s.now().Before(t.ExpiresAt) {
			return "", privicore.Errorf(privicore.ENOTFOUND, "data token not found")
		}
		t.Token, t.ExpiresAt = randomToken("dtk-"), time.Time{}
	}
	file, _ := t.Meta["file"].(map[string]any)
	if file == nil {
		file = map[string]any{}
	}
	file["fileName"], file["extension"], file["path"] = m.FileName, m.Extension, m.Path
	if m.Size != nil {
		file["size"] = *m.Size
	} else if _, ok := file["size"]; !ok {
		file["size"] = t.Size
	}
	t.Meta["file"] = file
	if m.Context != "" {
		t.Context = m.Context
	}
	return t.Token, nil
}

// ---- request data ----

type requestPayload struct {
	Token     string `json:"token"`
	RequestID string `json:"requestId"`
}

// RequestEvent is the data of an X-DPT-CAB-REQUEST-ID event.
type RequestEvent struct {
	Type          string `json:"type"`
	ID            string `json:"id"`
	CommandStatus int    `json:"command_status"`
	DataContext   string `json:"data_context"`
	OutputType    int    `json:"output_type"`
	Body          string `json:"body"`
}

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
	c, err := s.cmds.SubmitAttached(ctx, profileID, CmdRequest, requestPayload{Token: token, RequestID: reqID}, t)
	return c, reqID, err
}

// prepareRequest reads the payload from the devices (or makes its download
// URL when it is streamed). It returns the release of the data, a func()
// that publishes the events: Apply hands it to After, so that nothing
// leaves before the request is recorded.
func (s *Service) prepareRequest(ctx context.Context, c *privicore.Command) (any, error) {
	var p requestPayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	fail := func(reason string) (any, error) {
		if err := ctx.Err(); err != nil {
			// Cut short (an inline attempt): the queued path tries again
			// and is the one that answers.
			return nil, err
		}
		s.cmds.Publish(c.ID, c.ProfileID, RequestEvent{Type: EventRequest, ID: p.RequestID, CommandStatus: 3, Body: reason})
		return nil, privicore.Reject(reason, "%s", reason)
	}
	t, _ := s.attachedToken(c)
	if t == nil {
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

// attachedToken is the token record a request was submitted with, if this
// process still has it.
func (s *Service) attachedToken(c *privicore.Command) (*privicore.DataToken, bool) {
	a, ok := s.cmds.Attachment(c)
	if !ok {
		return nil, false
	}
	t, ok := a.(*privicore.DataToken)
	return t, ok
}

// ---- update ----

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
		return s.cmds.SubmitAttached(ctx, profileID, CmdUpdate, p, payload)
	}
	return s.cmds.Submit(ctx, profileID, CmdUpdate, p)
}

func (s *Service) prepareUpdate(ctx context.Context, c *privicore.Command) (any, error) {
	var p updatePayload
	if err := decode(c, &p); err != nil {
		return nil, err
	}
	if !p.HasData {
		return &pushed{}, nil
	}
	att, ok := s.cmds.Attachment(c)
	if !ok {
		return nil, privicore.Reject(fanout.ReasonWriteFailed, "the payload was lost in a restart; update it again")
	}
	return s.push(ctx, c.ProfileID, p.BlobID, att.([]byte))
}

func (s *Service) applyUpdate(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (command.Result, error) {
	p := prepared.(*pushed)
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

// MetaUpdate is an update-data-token request (metadata only).
type MetaUpdate struct {
	Token                              string
	FileName, Extension, Context, Path *string
}

// UpdateMeta submits a metadata change.
func (s *Service) UpdateMeta(ctx context.Context, profileID string, m MetaUpdate) (*privicore.Command, error) {
	if m.Token == "" {
		return nil, privicore.Invalid("token", "is required")
	}
	if m.Context != nil && (*m.Context == "" || utf8.RuneCountInString(*m.Context) > 512) {
		return nil, privicore.Invalid("context", "must be 1 to 512 characters")
	}
	if _, err := s.owned(ctx, s.store, profileID, m.Token); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdMeta, m)
}

func (s *Service) handleMeta(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var m MetaUpdate
	if err := decode(c, &m); err != nil {
		return command.Result{}, err
	}
	t, err := s.owned(ctx, q, c.ProfileID, m.Token)
	if err != nil {
		return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
	}
	file, _ := t.Meta["file"].(map[string]any)
	if file == nil {
		file = map[string]any{}
	}
	for k, v := range map[string]*string{"fileName": m.FileName, "extension": m.Extension, "path": m.Path} {
		if v != nil {
			file[k] = *v
		}
	}
	t.Meta["file"] = file
	if m.Context != nil {
		t.Context = *m.Context
	}
	t.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDataToken(ctx, t)
}

type riskPayload struct {
	Token  string         `json:"token"`
	Fields map[string]any `json:"fields"`
}

// ConfigureRisk submits the information-security risk meta of a token:
// classification (required), label, handling, retentionDays and any other
// fields (64 fields, 4 KiB).
func (s *Service) ConfigureRisk(ctx context.Context, profileID, token string, fields map[string]any) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if token == "" {
		v.Add("token", "is required")
	}
	checkRisk(fields, v) // risk.go
	if len(fields) > maxRiskFields {
		v.Add("fields", "at most 64 fields")
	}
	if b, _ := json.Marshal(fields); len(b) > maxRiskBytes {
		v.Add("fields", "at most 4 KiB")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.owned(ctx, s.store, profileID, token); err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, profileID, CmdRisk, riskPayload{Token: token, Fields: fields})
}

func (s *Service) handleRisk(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p riskPayload
	if err := decode(c, &p); err != nil {
		return command.Result{}, err
	}
	t, err := s.owned(ctx, q, c.ProfileID, p.Token)
	if err != nil {
		return command.Result{}, privicore.Reject(ReasonNotFound, "data token not found")
	}
	t.Meta["information_security_risk"] = p.Fields
	t.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDataToken(ctx, t)
}

// ---- delete ----

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

// Sweep removes tokens never made permanent whose reservation expired
// (keeping a tombstone, tombstone.go), queues their payloads' removal from
// the devices, and drops the tombstones past ReservationTombstoneTTL.
func (s *Service) Sweep(ctx context.Context) error {
	expired, err := s.store.ExpiredDataTokens(ctx, s.now(), 500)
	if err != nil {
		return err
	}
	for _, t := range expired {
		var holders []string
		err := s.store.Write(ctx, func(q privicore.Queries) error {
			var err error
			if holders, err = q.BlobHolders(ctx, t.BlobID); err != nil {
				return err
			}
			if err := s.forget(ctx, q, t.BlobID); err != nil {
				return err
			}
			if err := bury(ctx, q, t); err != nil {
				return err
			}
			return q.DeleteDataToken(ctx, t.ID)
		})
		if err != nil {
			return err
		}
		s.storage.KickAll(holders)
	}
	return s.pruneTombstones(ctx)
}

func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}
