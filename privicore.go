// Package privicore holds the domain types of the Privicore engine, the
// interfaces its storage implements, and its one error type.
//
// The rules live in the internal domain packages (internal/profile,
// internal/command, …); persistence in internal/sqlstore; the wire in
// internal/httpapi and internal/wsproxy.
package privicore

import (
	"context"
	"encoding/json"
	"time"
)

// Profile is an actor of the engine: a username, a password and a signed
// public key. A profile without a public key is not active: it may only
// authenticate, register its key, read its id and token expiry and revoke
// its token (other protected endpoints answer EFORBIDDEN with reason
// profile.public_key_required).
type Profile struct {
	ID           string    // ULID
	Username     string    // as registered; unique case-insensitively
	GivenName    string    //
	FamilyName   string    //
	PasswordHash string    // argon2id PHC string; never leaves the engine
	PublicKey    string    // signed public key (200 hex), "" until registered
	CreatedAt    time.Time //
	UpdatedAt    time.Time //
}

// Active reports whether the profile has registered its public key.
func (p *Profile) Active() bool { return p.PublicKey != "" }

// TimeFormat is how the wire writes times (answers and channel events):
// UTC as 2026-02-21T15:33:44+00:00, as the spec shows.
const TimeFormat = "2006-01-02T15:04:05-07:00"

// TokenKind says what a stored token is for.
type TokenKind string

// Token kinds.
const (
	TokenAuth     TokenKind = "auth"     // X-DPT-AUTHORIZATION token ("T-…")
	TokenQR       TokenKind = "qr"       // device enrollment token (single use, 5 minutes)
	TokenAction   TokenKind = "action"   // attempt-authentication action id (legacy flow step 1)
	TokenTemp     TokenKind = "temp"     // temporary token of the legacy flow (single use, 60 s)
	TokenDownload TokenKind = "download" // single-use download URL secret (Ref: the blob)
	TokenOAuth    TokenKind = "oauth"    // an OAuth application's access token ("T-…"): acts as the profile within Scope
	TokenRefresh  TokenKind = "refresh"  // an OAuth refresh token (single use; Pair: its access token)
)

// Token is a stored secret. Only its hash (ID) is kept; the secret itself is
// shown once, when issued.
type Token struct {
	ID        string    // hex SHA-256 of the secret
	ProfileID string    //
	Kind      TokenKind //
	Role      string    // QR tokens: the device role to grant
	Scope     []string  // granted scopes ("all" for a profile's own tokens)
	Ref       string    // kind-specific link (e.g. the temp token's request command)
	CreatedAt time.Time //
	ExpiresAt time.Time //
	RevokedAt time.Time // zero while valid
	UsedAt    time.Time // single-use tokens: zero until spent
	// OAuth tokens only.
	Application string // the OAuth application the token acts for
	Family      string // the authorization code every token of one grant descends from
	Pair        string // refresh tokens: the id of the access token issued with it
}

// Valid reports whether the token may be used at now.
func (t *Token) Valid(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// CommandStatus is the state of an asynchronous command, as sent in
// command_status.
type CommandStatus int

// Command states.
const (
	CommandPending   CommandStatus = 1
	CommandSucceeded CommandStatus = 2
	CommandRejected  CommandStatus = 3
)

// String returns the status word used by the status endpoints.
func (s CommandStatus) String() string {
	switch s {
	case CommandSucceeded:
		return "succeeded"
	case CommandRejected:
		return "rejected"
	default:
		return "started"
	}
}

// Command is an asynchronous write: recorded durably before the 202, then
// executed exactly once; its outcome is published to the profile's channel.
type Command struct {
	ID        string          // UUIDv7; the X-DPT-CAB-ID
	ProfileID string          // the acting profile ("" for public commands such as register-profile)
	Type      string          // handler name, e.g. "profile.register"
	Payload   json.RawMessage // handler input; never holds a plaintext secret
	Status    CommandStatus   //
	Body      string          // success: the result; rejection: the reason key
	Attempts  int             // executions that failed for a transient reason
	Actor     string          // who submitted it: "application <id>" or "token <hash prefix>"; "" if unknown
	CreatedAt time.Time       //
	UpdatedAt time.Time       //
	// Key is the ordering key: pending commands with one key run one at a
	// time, in the order they were accepted (held ones aside).
	Key string
	// Held is set while a vote holds the pending command (it then holds
	// back no later command of its key).
	Held bool
	// Origin is the replica that holds the command's in-memory input (a
	// Task's), "" if none; the other replicas leave the command to it
	// until OriginUntil, which it renews while it runs.
	Origin      string
	OriginUntil time.Time
	// Staged is what the command's Prepare did, recorded (JSON) before a
	// vote may hold it (a Task's StageBeforeGate), so that whichever
	// replica ends it uses that instead of running Prepare again; empty
	// if none.
	Staged json.RawMessage
	// Announcer is the replica that recorded the command's outcome and
	// publishes its ack, in shared mode ("" otherwise, and while pending):
	// another publishes it if that replica dies first (AnnouncerStore).
	Announcer string
}

// ProfileStore persists profiles.
type ProfileStore interface {
	// CreateProfile inserts p. A username taken case-insensitively is
	// ECONFLICT.
	CreateProfile(ctx context.Context, p *Profile) error
	// UpdateProfile writes the mutable fields of p (names, password hash,
	// public key, UpdatedAt).
	UpdateProfile(ctx context.Context, p *Profile) error
	// FindProfileByID returns the profile or ENOTFOUND.
	FindProfileByID(ctx context.Context, id string) (*Profile, error)
	// FindProfileByUsername looks up case-insensitively; ENOTFOUND if none.
	FindProfileByUsername(ctx context.Context, username string) (*Profile, error)
}

// TokenStore persists token hashes.
type TokenStore interface {
	// CreateToken inserts t.
	CreateToken(ctx context.Context, t *Token) error
	// FindToken returns the token with the given hash, or ENOTFOUND.
	FindToken(ctx context.Context, id string) (*Token, error)
	// FindTokenWithProfile is FindToken and FindProfileByID of its profile
	// in one read (every authorized request does both); the profile is nil
	// when it no longer exists.
	FindTokenWithProfile(ctx context.Context, id string) (*Token, *Profile, error)
	// RevokeToken sets RevokedAt if not already set.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// UseToken marks a single-use token spent; it returns ENOTFOUND if the
	// token does not exist or was already spent.
	UseToken(ctx context.Context, id string, at time.Time) error
	// DeleteExpiredTokens removes tokens that expired before t and returns
	// how many went.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error)
	// RevokeApplicationTokens revokes every valid token of an OAuth
	// application and returns their ids.
	RevokeApplicationTokens(ctx context.Context, applicationID string, at time.Time) ([]string, error)
	// RevokeTokenFamily revokes every valid token of one grant (Family) and
	// returns their ids.
	RevokeTokenFamily(ctx context.Context, family string, at time.Time) ([]string, error)
}

// CommandStore persists commands. A pending command is executed by the
// replica that leases it (ClaimCommands): one at a time, and, per ordering
// key, in acceptance order.
type CommandStore interface {
	// CreateCommand inserts c. A pending c is accepted after every command
	// of its Key created before it.
	CreateCommand(ctx context.Context, c *Command) error
	// FindCommand returns the command or ENOTFOUND. It reads by id alone:
	// for a command id presented as a capability (a status read without a
	// token) and for the engine's own reads (a vote resuming its command);
	// a profile's read is FindProfileCommand.
	FindCommand(ctx context.Context, id string) (*Command, error)
	// FindProfileCommand returns profileID's command id, or ENOTFOUND (also
	// when the command is another profile's).
	FindProfileCommand(ctx context.Context, profileID, id string) (*Command, error)
	// FinishCommand moves a pending command leased to owner to status with
	// body, updated at at and announced by announcer. It returns ECONFLICT
	// if the command is no longer pending (it already finished) or is
	// leased to another replica (this one's lease expired), so a command
	// takes effect at most once.
	FinishCommand(ctx context.Context, id, owner string, status CommandStatus, body string, at time.Time, announcer string) error
	// MarkCommandAttempt records one failed attempt of a pending command
	// leased to owner and ends the lease; no replica claims it before
	// retryAt (its key waits meanwhile).
	MarkCommandAttempt(ctx context.Context, id, owner string, at, retryAt time.Time) error
	// PendingCommands lists pending commands, oldest first.
	PendingCommands(ctx context.Context, limit int) ([]*Command, error)
	// ClaimCommands leases up to limit pending commands to owner until
	// until and returns them: commands not held, not leased (or whose lease
	// expired before now), not left to another replica (Origin), and with
	// no earlier pending command of their key, nor one leased, that is not
	// held. Claiming is atomic across replicas. busy reports that a
	// claimable command was passed over because another transaction was
	// deciding its key: claim again soon.
	ClaimCommands(ctx context.Context, owner string, now, until time.Time, limit int) (cmds []*Command, busy bool, err error)
	// RenewCommandLeases extends to until the leases owner holds and the
	// commands it is the Origin of.
	RenewCommandLeases(ctx context.Context, owner string, until time.Time) error
	// HoldCommand marks a pending command leased to owner held (a vote
	// holds it) and ends the lease, and reports whether it did: if
	// ResumeCommand came meanwhile, the command is left claimable instead.
	HoldCommand(ctx context.Context, id, owner string) (bool, error)
	// StageCommand records staged (JSON: what Prepare did) with a pending
	// command leased to owner, and ends its Origin reservation (its
	// in-memory input is no longer needed); ECONFLICT if the command is not
	// pending or not leased to owner.
	StageCommand(ctx context.Context, id, owner string, staged []byte) error
	// ResumeCommand ends the hold of a pending command: it is accepted
	// again, after the commands of its key accepted so far. A command not
	// yet held (its execution is deciding to hold it) is marked so that
	// HoldCommand leaves it claimable.
	ResumeCommand(ctx context.Context, id string) error
	// CommandKeyFree, in a write, reports whether no pending command of
	// key is unheld; on PostgreSQL it first takes key's lock for the rest
	// of the transaction (false, without waiting, if another has it), so
	// that no command of key is claimed until this write commits.
	CommandKeyFree(ctx context.Context, key string) (bool, error)
	// ResetCommandLeases ends every lease and Origin reservation (a single
	// engine starting: no other replica holds any).
	ResetCommandLeases(ctx context.Context) error
	// ReleaseCommandLeases ends the leases owner holds and the Origin
	// reservations it made (a replica stopping: the others may take its
	// commands at once instead of after the leases' expiry).
	ReleaseCommandLeases(ctx context.Context, owner string) error
	// PruneCommands deletes up to limit finished (succeeded or rejected)
	// commands created before before and returns how many it deleted. The
	// succeeded ones are first folded into the per-day counts that
	// CommandCounts reads, so the statistics do not change. A pending
	// command is never pruned.
	PruneCommands(ctx context.Context, before time.Time, limit int) (int, error)
}

// Queries is everything the engine reads and writes.
type Queries interface {
	ProfileStore
	TokenStore
	CommandStore
	DeviceStore
	DataTokenStore
	OAuthStore
	VotingStore
	PoolStore
	PolicyStore
}

// Store is the engine's database. Its Queries methods read outside a
// transaction; every write goes through Write.
type Store interface {
	Queries
	// Write runs fn in a transaction. Concurrent calls are group-committed:
	// several fns share one commit (one fsync), each inside its own
	// savepoint, so an fn that returns an error is rolled back alone. Write
	// returns once the commit is durable, with fn's error or the commit's.
	Write(ctx context.Context, fn func(q Queries) error) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close stops the writer and closes the database.
	Close() error
}
