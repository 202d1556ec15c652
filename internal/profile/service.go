// Package profile holds the rules of profiles, their authorization tokens
// and their public keys: registration, authentication (with brute-force
// limits), password changes, token issue/reauthorize/revoke, QR enrollment
// tokens, the legacy four-step token flow, and public key registration.
package profile

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/keys"
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
	Logger         *slog.Logger
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
	auths     *authCache
	now       func() time.Time
	log       *slog.Logger
}

// New returns the service and registers its command handlers with cmds.
// onRevoke is called with the id of every revoked token (to close sockets
// joined with it).
func New(store privicore.Store, cmds *command.Processor, cfg Config, onRevoke func(tokenID string)) *Service {
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
	s := &Service{store: store, cmds: cmds, cfg: cfg, onRevoke: onRevoke, log: cfg.Logger,
		failures: ratelimit.NewFailureGuard(ratelimit.FailureQuotas{UserAddr: cfg.UserAddrFailures,
			User: cfg.UserFailures, Addr: cfg.AddrFailures}, limiterKeys),
		registers: ratelimit.NewQuota(cfg.RegisterPerAddr, limiterKeys),
		hasher:    password.NewHasher(cfg.HashConcurrency, cfg.PasswordParams),
		auths:     newAuthCache(),
		now:       func() time.Time { return time.Now().UTC() }}
	cmds.Handle(CmdRegister, s.handleRegister)
	cmds.Handle(CmdChangePassword, s.handleChangePassword)
	cmds.Event(CmdChangePassword, command.Fires(privicore.EventPasswordChange))
	cmds.Handle(CmdRequestAuthToken, s.handleRequestAuthToken)
	cmds.Handle(CmdRegisterPublicKey, s.handleRegisterPublicKey)
	return s
}

// Auth is an authenticated caller: the profile and the token it presented
// (the profile's own, or an OAuth application's access token).
type Auth struct {
	Profile *privicore.Profile
	Token   *privicore.Token
}

// ReasonScopeMissing is the EFORBIDDEN reason for an OAuth access token used
// outside its scopes.
const ReasonScopeMissing = "oauth.scope_missing"

// Scopes an endpoint may demand besides the catalogue's.
const (
	ProfileOnly = ""    // only the profile's own tokens open it
	AnyScope    = "any" // every valid token, OAuth or not (status, channel, a token's own expiry and revocation)
)

// Application is the OAuth application acting, "" for the profile itself.
func (a *Auth) Application() string {
	if a.Token.Kind == privicore.TokenOAuth {
		return a.Token.Application
	}
	return ""
}

// Actor names the caller for the commands it submits: the OAuth
// application, or the first 12 hex digits of the token's hash.
func (a *Auth) Actor() string {
	if app := a.Application(); app != "" {
		return "application " + app
	}
	return "token " + a.Token.ID[:min(12, len(a.Token.ID))]
}

// Allow returns nil if the caller may use an endpoint that needs scope: a
// profile's own full token may use every endpoint; a scoped token (an OAuth
// access token, or a legacy-flow token asked for with scope[]) only those
// whose scope it was granted, never ProfileOnly ones (EFORBIDDEN with reason
// oauth.scope_missing).
func (a *Auth) Allow(scope string) error {
	if scope == AnyScope || a.fullToken() {
		return nil
	}
	if scope == ProfileOnly {
		return privicore.Forbidden(ReasonScopeMissing, "this endpoint needs the profile's own token")
	}
	if !privicore.ScopeCovers(a.Token.Scope, scope) {
		return privicore.Forbidden(ReasonScopeMissing, "the token lacks the scope %s", scope)
	}
	return nil
}

// fullToken reports whether the caller's token is the profile's own
// unscoped token (scope "all"; a token row without scope predates scopes).
func (a *Auth) fullToken() bool {
	return a.Token.Kind != privicore.TokenOAuth &&
		(len(a.Token.Scope) == 0 || slices.Contains(a.Token.Scope, privicore.ScopeAll))
}

// errInvalidToken is the one answer for a missing, unknown, expired or revoked token.
var errInvalidToken = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid token")

// errInvalidCredentials is the one answer for a wrong username or password.
var errInvalidCredentials = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid credentials")

// ---- registration ----

// RegisterInput is a register-profile request.
type RegisterInput struct {
	Username   string
	Password   string
	GivenName  string
	FamilyName string
}

type registerPayload struct {
	ProfileID    string `json:"profileId"`
	Username     string `json:"username"`
	GivenName    string `json:"givenName"`
	FamilyName   string `json:"familyName"`
	PasswordHash string `json:"passwordHash"`
}

// Register validates in and submits a register-profile command. The
// username is prepared by the PRECIS UsernameCasePreserved profile
// (PrepareUsername); a username taken case-insensitively is ECONFLICT now,
// or the rejection profile.username_taken if another registration wins the
// race. Registrations are rate-limited per client address addr (ERATELIMIT).
// The ack body is the new profile id.
func (s *Service) Register(ctx context.Context, in RegisterInput, addr string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if name, err := PrepareUsername(in.Username); err != nil {
		v.Add("username", err.Error())
	} else {
		in.Username = name
	}
	checkPassword(v, "password", in.Password)
	if utf8.RuneCountInString(in.GivenName) > 255 {
		v.Add("givenName", "must be at most 255 characters")
	}
	if utf8.RuneCountInString(in.FamilyName) > 255 {
		v.Add("familyName", "must be at most 255 characters")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.store.FindProfileByUsername(ctx, in.Username); err == nil {
		return nil, &privicore.Error{Code: privicore.ECONFLICT, Reason: ReasonUsernameTaken, Message: "username is taken"}
	} else if privicore.ErrorCode(err) != privicore.ENOTFOUND {
		return nil, err
	}
	if ok, wait := s.registers.Allow(addr); !ok {
		return nil, rateLimited(wait)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	id := ulid.Make().String()
	return s.cmds.Submit(ctx, id, CmdRegister, registerPayload{ProfileID: id, Username: in.Username,
		GivenName: in.GivenName, FamilyName: in.FamilyName, PasswordHash: hash})
}

func checkPassword(v privicore.ValidationErrors, field, pw string) {
	if pw == "" {
		v.Add(field, "is required")
	} else if len(pw) > MaxPassBytes {
		v.Add(field, "must be at most 1024 bytes")
	} else if err := password.CheckStrength(pw); err != nil {
		v.Add(field, err.Error())
	}
}

func (s *Service) handleRegister(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p registerPayload
	if err := json.Unmarshal(c.Payload, &p); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	now := s.now()
	err := q.CreateProfile(ctx, &privicore.Profile{ID: p.ProfileID, Username: p.Username, GivenName: p.GivenName,
		FamilyName: p.FamilyName, PasswordHash: p.PasswordHash, CreatedAt: now, UpdatedAt: now})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return command.Result{}, privicore.Reject(ReasonUsernameTaken, "username is taken")
	} else if err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: p.ProfileID}, nil
}

// ---- authentication ----

func rateLimited(wait time.Duration) error {
	return &privicore.Error{Code: privicore.ERATELIMIT, Message: "too many attempts, retry later", RetryAfter: wait}
}

// Authenticate checks username and password (rate-limited per username and
// per client address addr) and issues an authorization token with the
// default lifetime. It returns the token's secret, shown only now.
func (s *Service) Authenticate(ctx context.Context, username, pw, addr string) (string, *privicore.Token, error) {
	p, err := s.checkCredentials(ctx, username, pw, addr)
	if err != nil {
		return "", nil, err
	}
	return s.issue(ctx, p.ID, privicore.TokenAuth, prefixAuth, s.cfg.TokenTTL, "", "")
}

// ProfileByCredentials returns the profile for username and password, under
// the same limits as Authenticate (for endpoints that take credentials in
// the body).
func (s *Service) ProfileByCredentials(ctx context.Context, username, pw, addr string) (*privicore.Profile, error) {
	return s.checkCredentials(ctx, username, pw, addr)
}

// issue stores a new full token and returns its secret.
func (s *Service) issue(ctx context.Context, profileID string, kind privicore.TokenKind, prefix string, ttl time.Duration, role, ref string) (string, *privicore.Token, error) {
	return s.issueScoped(ctx, profileID, kind, prefix, ttl, role, ref, []string{privicore.ScopeAll})
}

// issueScoped stores a new token within scope and returns its secret.
func (s *Service) issueScoped(ctx context.Context, profileID string, kind privicore.TokenKind, prefix string, ttl time.Duration, role, ref string, scope []string) (string, *privicore.Token, error) {
	secret := NewSecret(prefix)
	now := s.now()
	t := &privicore.Token{ID: HashSecret(secret), ProfileID: profileID, Kind: kind, Role: role, Ref: ref,
		Scope: scope, CreatedAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Second)}
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.CreateToken(ctx, t) }); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// lookup returns the valid, unspent token of kind for secret.
func (s *Service) lookup(ctx context.Context, secret string, kinds ...privicore.TokenKind) (*privicore.Token, error) {
	t, err := s.lookupAny(ctx, secret, kinds...)
	if err != nil {
		return nil, err
	}
	if !t.UsedAt.IsZero() {
		return nil, errInvalidToken
	}
	return t, nil
}

// lookupAny returns the valid token of one of kinds for secret, spent or not.
func (s *Service) lookupAny(ctx context.Context, secret string, kinds ...privicore.TokenKind) (*privicore.Token, error) {
	if secret == "" || len(secret) > 256 {
		return nil, errInvalidToken
	}
	t, err := s.store.FindToken(ctx, HashSecret(secret))
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	if !slices.Contains(kinds, t.Kind) || !t.Valid(s.now()) {
		return nil, errInvalidToken
	}
	return t, nil
}

// Authorize resolves an X-DPT-AUTHORIZATION secret to its caller. Any
// missing, unknown, expired or revoked token is EUNAUTHORIZED.
func (s *Service) Authorize(ctx context.Context, secret string) (*Auth, error) {
	if secret == "" || len(secret) > 256 {
		return nil, errInvalidToken
	}
	id := HashSecret(secret)
	if a := s.auths.get(id, s.now()); a != nil {
		return a, nil
	}
	gen := s.auths.generation() // before the read: a revoke meanwhile keeps it out of the cache
	a, err := s.authorize(ctx, secret)
	if err == nil {
		s.auths.put(id, a, s.now(), gen)
	}
	return a, err
}

func (s *Service) authorize(ctx context.Context, secret string) (*Auth, error) {
	t, err := s.lookupAuth(ctx, secret)
	if err != nil {
		return nil, err
	}
	p, err := s.store.FindProfileByID(ctx, t.ProfileID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	return &Auth{Profile: p, Token: t}, nil
}

// RequireActive returns EFORBIDDEN profile.public_key_required unless the
// caller's profile has registered its public key.
func RequireActive(a *Auth) error {
	if !a.Profile.Active() {
		return privicore.Forbidden(ReasonPublicKeyRequired, "register the profile's public key first")
	}
	return nil
}

// lookupAuth returns the valid authorization token for secret: the
// profile's own or an OAuth access token.
func (s *Service) lookupAuth(ctx context.Context, secret string) (*privicore.Token, error) {
	return s.lookup(ctx, secret, privicore.TokenAuth, privicore.TokenOAuth)
}

// Forget drops cached authorizations of a profile and closes the sockets
// joined with tokens revoked outside this service (OAuth revocations).
func (s *Service) Forget(profileID string, tokenIDs []string) {
	s.auths.dropProfile(profileID)
	for _, id := range tokenIDs {
		s.onRevoke(id)
	}
}

// ChannelToken returns the valid token a socket joins its channel with
// (read from the store, never from the cache: a join must see a revocation
// at once). OAuth access tokens may join too: an application needs its
// commands' acks; the token's kind, scopes and application say which
// events it may read.
func (s *Service) ChannelToken(ctx context.Context, secret string) (*privicore.Token, error) {
	return s.lookupAuth(ctx, secret)
}

// Reauthorize issues a fresh token for the caller with the given ttl
// (60 s … 30 days); the presented token keeps its own expiry.
func (s *Service) Reauthorize(ctx context.Context, a *Auth, ttl time.Duration) (string, *privicore.Token, error) {
	if err := a.Allow(ProfileOnly); err != nil {
		return "", nil, err
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return "", nil, privicore.Invalid("ttl", "must be a number of seconds from 60 to 2592000")
	}
	return s.issue(ctx, a.Profile.ID, privicore.TokenAuth, prefixAuth, ttl, "", "")
}

// Revoke kills the caller's token at once: later requests get 401 and the
// sockets joined with it are closed.
func (s *Service) Revoke(ctx context.Context, a *Auth) error {
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.RevokeToken(ctx, a.Token.ID, s.now()) }); err != nil {
		return err
	}
	s.auths.dropToken(a.Token.ID)
	s.onRevoke(a.Token.ID)
	return nil
}

// Device roles a QR token may carry.
var qrRoles = map[string]bool{"": true, "storage": true, "authenticator": true}

// GenerateQRToken issues a single-use device enrollment token (5 minutes),
// optionally carrying the role to grant the enrolled device.
func (s *Service) GenerateQRToken(ctx context.Context, a *Auth, role string) (string, *privicore.Token, error) {
	if !qrRoles[role] {
		return "", nil, privicore.Invalid("role", "must be storage or authenticator")
	}
	return s.issue(ctx, a.Profile.ID, privicore.TokenQR, prefixQR, QRTTL, role, "")
}

// IsQRToken reports whether secret has the form of an enrollment token.
func IsQRToken(secret string) bool { return strings.HasPrefix(secret, prefixQR) }

// AuthorizeQR resolves an enrollment token (spent or not, until it
// expires) to its owner. Use SpendQR to bind it to a new device.
func (s *Service) AuthorizeQR(ctx context.Context, secret string) (*Auth, error) {
	t, err := s.lookupAny(ctx, secret, privicore.TokenQR)
	if err != nil {
		return nil, err
	}
	p, err := s.store.FindProfileByID(ctx, t.ProfileID)
	if err != nil {
		return nil, errInvalidToken
	}
	return &Auth{Profile: p, Token: t}, nil
}

// SpendQR marks an enrollment token used; a token already used is
// EUNAUTHORIZED (one QR token enrolls one device).
func (s *Service) SpendQR(ctx context.Context, t *privicore.Token) error {
	err := s.store.Write(ctx, func(q privicore.Queries) error { return q.UseToken(ctx, t.ID, s.now()) })
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return errInvalidToken
	}
	return err
}

// ---- change password ----

type changePasswordPayload struct {
	// Checked is the SHA-256 of the password hash the current password was
	// verified against, or "" if it did not match. The plaintext never
	// reaches the command log.
	Checked string `json:"checked"`
	NewHash string `json:"newHash"`
}

func hashOfHash(h string) string {
	sum := sha256.Sum256([]byte(h))
	return hex.EncodeToString(sum[:])
}

// ChangePassword submits a password change. A weak new password is
// EINVALID now; a wrong current password is the rejection
// profile.wrong_password, counted as a failed password check of the
// profile's username from addr (under the same limits as Authenticate:
// ERATELIMIT once they are spent). Issued tokens stay valid.
func (s *Service) ChangePassword(ctx context.Context, a *Auth, current, next, addr string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if current == "" {
		v.Add("currentPassword", "is required")
	}
	checkPassword(v, "newPassword", next)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p := a.Profile
	ok, err := s.verifyLimited(ctx, p.Username, addr, func() (bool, error) {
		if len(current) > MaxPassBytes {
			return false, nil
		}
		ok, err := s.hasher.Verify(ctx, p.PasswordHash, current)
		if errors.Is(err, password.ErrMalformed) {
			return false, nil
		}
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	var pl changePasswordPayload
	if ok {
		// A wrong current password is recorded as such (Checked empty); no
		// new hash is made for it.
		pl.Checked = hashOfHash(p.PasswordHash)
		if pl.NewHash, err = s.hasher.Hash(ctx, next); err != nil {
			return nil, err
		}
	}
	return s.cmds.Submit(ctx, p.ID, CmdChangePassword, pl)
}

func (s *Service) handleChangePassword(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl changePasswordPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	p, err := q.FindProfileByID(ctx, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	// The password must still be the one the current password was checked against.
	if pl.Checked == "" || subtle.ConstantTimeCompare([]byte(pl.Checked), []byte(hashOfHash(p.PasswordHash))) != 1 {
		return command.Result{}, privicore.Reject(ReasonWrongPassword, "current password is wrong")
	}
	p.PasswordHash = pl.NewHash
	p.UpdatedAt = s.now()
	return command.Result{After: func() { s.auths.dropProfile(p.ID) }}, q.UpdateProfile(ctx, p)
}

// ---- legacy four-step flow ----

// AttemptAuthentication is step 1: it checks credentials (rate-limited) and
// returns a single-use action id valid for 60 s.
func (s *Service) AttemptAuthentication(ctx context.Context, username, pw, addr string) (string, error) {
	p, err := s.checkCredentials(ctx, username, pw, addr)
	if err != nil {
		return "", err
	}
	secret, _, err := s.issue(ctx, p.ID, privicore.TokenAction, prefixAction, ActionTTL, "", "")
	return secret, err
}

// RetrieveTempToken is step 2: it spends the action id and returns a
// temporary token (single use, 60 s).
func (s *Service) RetrieveTempToken(ctx context.Context, actionID string) (string, error) {
	t, err := s.spend(ctx, actionID, privicore.TokenAction)
	if err != nil {
		return "", err
	}
	secret, _, err := s.issue(ctx, t.ProfileID, privicore.TokenTemp, prefixTemp, TempTTL, "", "")
	return secret, err
}

// spend marks a single-use token used and returns it.
func (s *Service) spend(ctx context.Context, secret string, kind privicore.TokenKind) (*privicore.Token, error) {
	t, err := s.lookup(ctx, secret, kind)
	if err != nil {
		return nil, err
	}
	err = s.store.Write(ctx, func(q privicore.Queries) error { return q.UseToken(ctx, t.ID, s.now()) })
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return nil, errInvalidToken
	}
	return t, err
}

type requestAuthTokenPayload struct {
	TempTokenID string   `json:"tempTokenId"`
	Scope       []string `json:"scope"`
}

// RequestAuthorizationToken is step 3: with a temporary token it submits a
// command asking for an authorization token within scope (scopes of the
// catalogue, EINVALID on "scope" otherwise). No scope, or "all", asks for
// the profile's full token; any other scope gives a token that acts like
// an OAuth access token with those scopes (Auth.Allow).
func (s *Service) RequestAuthorizationToken(ctx context.Context, tempSecret string, scope []string) (*privicore.Command, error) {
	t, err := s.lookup(ctx, tempSecret, privicore.TokenTemp)
	if err != nil {
		return nil, err
	}
	scope, err = legacyScope(scope)
	if err != nil {
		return nil, err
	}
	return s.cmds.Submit(ctx, t.ProfileID, CmdRequestAuthToken, requestAuthTokenPayload{TempTokenID: t.ID, Scope: scope})
}

// legacyScope validates and normalises the scope[] of the legacy flow:
// none or one including "all" is ["all"]; otherwise the distinct scopes in
// the catalogue's order.
func legacyScope(scope []string) ([]string, error) {
	v := privicore.ValidationErrors{}
	if privicore.CheckScopes(v, "scope", scope); len(v) > 0 {
		return nil, v.Err()
	}
	if len(scope) == 0 || slices.Contains(scope, privicore.ScopeAll) {
		return []string{privicore.ScopeAll}, nil
	}
	var out []string
	for _, sc := range privicore.Scopes {
		if slices.Contains(scope, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func (s *Service) handleRequestAuthToken(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl requestAuthTokenPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	t, err := q.FindToken(ctx, pl.TempTokenID)
	if err != nil || !t.Valid(s.now()) || !t.UsedAt.IsZero() {
		return command.Result{}, privicore.Reject("profile.token_expired", "temporary token expired")
	}
	return command.Result{}, nil
}

// RetrieveAuthorizationToken is step 4: with the temporary token and the
// id of its succeeded step-3 command, it spends the temporary token and
// issues an authorization token.
func (s *Service) RetrieveAuthorizationToken(ctx context.Context, tempSecret, commandID string) (string, *privicore.Token, error) {
	t, err := s.lookup(ctx, tempSecret, privicore.TokenTemp)
	if err != nil {
		return "", nil, err
	}
	c, err := s.store.FindCommand(ctx, commandID)
	if err != nil || c.ProfileID != t.ProfileID || c.Type != CmdRequestAuthToken {
		return "", nil, privicore.Errorf(privicore.ENOTFOUND, "authorization token request not found")
	}
	var pl requestAuthTokenPayload
	if json.Unmarshal(c.Payload, &pl) != nil || pl.TempTokenID != t.ID {
		return "", nil, privicore.Errorf(privicore.ENOTFOUND, "authorization token request not found")
	}
	if c.Status != privicore.CommandSucceeded {
		return "", nil, privicore.Errorf(privicore.ECONFLICT, "the authorization token request has not succeeded")
	}
	scope, err := legacyScope(pl.Scope)
	if err != nil {
		return "", nil, err
	}
	if _, err := s.spend(ctx, tempSecret, privicore.TokenTemp); err != nil {
		return "", nil, err
	}
	return s.issueScoped(ctx, t.ProfileID, privicore.TokenAuth, prefixAuth, s.cfg.TokenTTL, "", "", scope)
}

// ---- public keys ----

type publicKeyPayload struct {
	PublicKey        string `json:"publicKey"`
	DeviceIdentifier string `json:"deviceIdentifier,omitempty"`
	QRTokenID        string `json:"qrTokenId,omitempty"`
}

// DeviceKeys registers a device's public key inside a command; the device
// service implements it.
type DeviceKeys interface {
	RegisterKey(ctx context.Context, q privicore.Queries, profileID, deviceID, qrTokenID, publicKey string) error
	// DeviceChanged is called once such a registration is committed.
	DeviceChanged()
}

// SetDeviceKeys connects the device service (set once, before Start).
func (s *Service) SetDeviceKeys(d DeviceKeys) { s.devices = d }

// RegisterPublicKey validates a signed public key (EINVALID on publicKey
// for any length, hex, tag or checksum problem) and submits its
// registration for profile p, replacing an existing key. With a
// deviceIdentifier the key is a device's: only for a pending or approved
// device of the caller.
func (s *Service) RegisterPublicKey(ctx context.Context, p *privicore.Profile, publicKey, deviceIdentifier string) (*privicore.Command, error) {
	return s.RegisterKey(ctx, p.ID, publicKey, deviceIdentifier, "")
}

// RegisterKey is RegisterPublicKey for profileID; with qrTokenID (a device
// enrolling with a QR token) the device must be the one bound to that token.
func (s *Service) RegisterKey(ctx context.Context, profileID, publicKey, deviceIdentifier, qrTokenID string) (*privicore.Command, error) {
	publicKey = strings.ToLower(strings.TrimSpace(publicKey))
	if publicKey == "" {
		return nil, privicore.Invalid("publicKey", "is required")
	}
	if _, err := keys.ParseSigned(publicKey); err != nil {
		return nil, privicore.Invalid("publicKey", err.Error())
	}
	return s.cmds.Submit(ctx, profileID, CmdRegisterPublicKey, publicKeyPayload{PublicKey: publicKey, DeviceIdentifier: deviceIdentifier, QRTokenID: qrTokenID})
}

func (s *Service) handleRegisterPublicKey(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl publicKeyPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	if pl.DeviceIdentifier != "" {
		if s.devices == nil {
			return command.Result{}, privicore.Reject(ReasonDeviceNotFound, "device not found")
		}
		return command.Result{After: s.devices.DeviceChanged}, s.devices.RegisterKey(ctx, q, c.ProfileID, pl.DeviceIdentifier, pl.QRTokenID, pl.PublicKey)
	}
	p, err := q.FindProfileByID(ctx, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	p.PublicKey = pl.PublicKey
	p.UpdatedAt = s.now()
	return command.Result{After: func() { s.auths.dropProfile(p.ID) }}, q.UpdateProfile(ctx, p)
}

// PublicKey returns the caller's registered key (ENOTFOUND if none). With a
// deviceIdentifier, the key of that device of the caller.
func (s *Service) PublicKey(ctx context.Context, a *Auth, deviceIdentifier string) (string, error) {
	if deviceIdentifier != "" || a.Profile.PublicKey == "" {
		return "", privicore.Errorf(privicore.ENOTFOUND, "no public key registered")
	}
	return a.Profile.PublicKey, nil
}

// Sweep deletes tokens that expired more than a day ago.
func (s *Service) Sweep(ctx context.Context) error {
	return s.store.Write(ctx, func(q privicore.Queries) error {
		_, err := q.DeleteExpiredTokens(ctx, s.now().Add(-24*time.Hour))
		return err
	})
}
