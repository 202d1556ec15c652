// Package profile holds the rules of profiles, their authorization tokens
// and their public keys: registration (register.go), authentication with
// brute-force limits and token issue/reauthorize/revoke (login.go,
// limits.go, auth.go for the caller and its scopes, token.go for secrets),
// password changes (password.go), QR enrollment tokens (qr.go), the legacy
// four-step token flow (legacy.go), and public key registration
// (publickey.go).
package profile

import (
	"context"
	"log/slog"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/ratelimit"
)

// Command types handled by this package.
const (
	CmdRegister          = "profile.register"
	CmdChangePassword    = "profile.change_password"
	CmdRequestAuthToken  = "profile.request_authorization_token"
	CmdRegisterPublicKey = "publickey.register"
)

// Rejection reasons of this package.
const (
	ReasonUsernameTaken     = "profile.username_taken"
	ReasonWrongPassword     = "profile.wrong_password"
	ReasonPublicKeyRequired = "profile.public_key_required"
	ReasonDeviceNotFound    = "device.not_found"
)

// Token lifetimes and bounds.
const (
	MinTTL       = 60 * time.Second
	MaxTTL       = 2592000 * time.Second // 30 days
	QRTTL        = 5 * time.Minute
	TempTTL      = 60 * time.Second
	ActionTTL    = 60 * time.Second
	MaxPassBytes = 1024
)

// Config tunes the service. The zero value of each limit is its default
// (limits.go); a limit with N < 0 is off.
type Config struct {
	TokenTTL time.Duration // default lifetime of authorization tokens; default 8h
	// Failed password checks (authenticate, attempt-authentication,
	// change-password, register-public-key with credentials) allowed per
	// (username, client address), per username and per client address.
	UserAddrFailures ratelimit.Quota // default 5 per 10 min
	UserFailures     ratelimit.Quota // default 10 per 10 min
	AddrFailures     ratelimit.Quota // default 50 per 10 min
	// RegisterPerAddr limits registrations per client address.
	RegisterPerAddr ratelimit.Quota // default 20 per hour
	// HashConcurrency bounds the argon2id runs at once (19 MiB each) on
	// every path that hashes; default runtime.GOMAXPROCS.
	HashConcurrency int
	// PasswordParams are argon2id's costs for new hashes; zero:
	// password.DefaultParams (tests lower them).
	PasswordParams password.Params
	// Counters, in cluster mode (PostgreSQL), keeps the failure and
	// registration counts in the database, so that the limits hold across
	// replicas; nil keeps them in memory (one engine). The argon2id bound
	// (HashConcurrency) stays per replica: it bounds this machine's CPU.
	Counters privicore.RateStore
	Logger   *slog.Logger
	// Peers tell the auth cache (authcache.go) of revocations and profile
	// changes, this engine's and, in cluster mode, every replica's: they
	// must be the store's (sqlstore.DB.SetPeers), whose commits are what
	// the cache hears of. nil: no auth cache (every request reads its
	// token).
	Peers *coherence.Peers
}

// Service implements the profile rules.
type Service struct {
	store     privicore.Store
	cmds      *command.Processor
	cfg       Config
	failures  *ratelimit.FailureGuard
	registers *ratelimit.Limiter
	hasher    *password.Hasher
	onRevoke  func(tokenID string)
	devices   DeviceKeys
	tokens    *Tokens
	auths     *authCache
	now       func() time.Time
	log       *slog.Logger
}

// New returns the service and registers its command handlers with cmds.
// devices registers device keys (publickey.go); nil refuses every device
// key as device.not_found. onRevoke is called with the id of every revoked
// token (to close sockets joined with it).
func New(store privicore.Store, cmds *command.Processor, cfg Config, devices DeviceKeys, onRevoke func(tokenID string)) *Service {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 8 * time.Hour
	}
	cfg.limitDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if onRevoke == nil {
		onRevoke = func(string) {}
	}
	s := &Service{store: store, cmds: cmds, cfg: cfg, devices: devices, onRevoke: onRevoke, log: cfg.Logger, tokens: NewTokens(store),
		failures: cfg.failureGuard(), registers: cfg.registerLimiter(),
		hasher: password.NewHasher(cfg.HashConcurrency, cfg.PasswordParams),
		auths:  newAuthCache(cfg.Peers),
		now:    func() time.Time { return time.Now().UTC() }}
	cmds.Handle(CmdRegister, s.handleRegister)
	cmds.Handle(CmdChangePassword, s.handleChangePassword)
	cmds.Event(CmdChangePassword, command.Fires(privicore.EventPasswordChange))
	cmds.Handle(CmdRequestAuthToken, s.handleRequestAuthToken)
	cmds.Handle(CmdRegisterPublicKey, s.handleRegisterPublicKey)
	return s
}

// errInvalidToken is the one answer for a missing, unknown, expired or revoked token.
var errInvalidToken = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid token")

// errInvalidCredentials is the one answer for a wrong username or password.
var errInvalidCredentials = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid credentials")

// Sweep deletes tokens that expired more than a day ago (and, in cluster
// mode, the expired rate-limit buckets).
func (s *Service) Sweep(ctx context.Context) error {
	if err := s.sweepCounters(ctx); err != nil {
		return err
	}
	return s.store.Write(ctx, func(q privicore.Queries) error {
		_, err := q.DeleteExpiredTokens(ctx, s.now().Add(-24*time.Hour))
		return err
	})
}
