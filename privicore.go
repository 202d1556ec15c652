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

// CommandStore persists commands.
type CommandStore interface {
	// CreateCommand inserts c (status pending).
	CreateCommand(ctx context.Context, c *Command) error
	// FindCommand returns the command or ENOTFOUND. It reads by id alone:
	// for a command id presented as a capability (a status read without a
	// token) and for the engine's own reads (a vote resuming its command);
	// a profile's read is FindProfileCommand.
	FindCommand(ctx context.Context, id string) (*Command, error)
	// FindProfileCommand returns profileID's command id, or ENOTFOUND (also
	// when the command is another profile's).
	FindProfileCommand(ctx context.Context, profileID, id string) (*Command, error)
	// FinishCommand moves a pending command to status with body. It returns
	// ECONFLICT if the command is no longer pending (it already finished), so
	// a command takes effect at most once.
	FinishCommand(ctx context.Context, id string, status CommandStatus, body string, at time.Time) error
	// MarkCommandAttempt records one failed attempt of a pending command.
	MarkCommandAttempt(ctx context.Context, id string, at time.Time) error
	// PendingCommands lists pending commands, oldest first.
	PendingCommands(ctx context.Context, limit int) ([]*Command, error)
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

// Device roles and states.
const (
	RoleNone          = "none"
	RoleStorage       = "storage"
	RoleAuthenticator = "authenticator"

	DevicePending  = "pending"
	DeviceApproved = "approved"
)

// Device is third-party software enrolled under a profile: a storage device,
// an authenticator or a plain signer. Its key pair is generated on the
// device; the engine holds only the public key. Only the owner acts on it;
// another profile's device behaves as a missing one.
type Device struct {
	ID               string         // deviceIdentifier (UUID)
	ProfileID        string         // the owner
	RequestCommandID string         // the request-unique-identifier command
	Name             string         //
	DisplayName      string         //
	Tags             []string       //
	Meta             map[string]any //
	Role             string         // RoleNone, RoleStorage, RoleAuthenticator
	State            string         // DevicePending, DeviceApproved
	PublicKey        string         // signed public key (200 hex), "" until registered
	ClientID         string         // bus user name, set once approved
	SecretHash       string         // hex SHA-256 of the current bus client secret
	QRTokenID        string         // the enrollment token it was requested with, if any
	QRRole           string         // the role that token grants on approval
	LastSeenAt       time.Time      //
	CreatedAt        time.Time      //
	UpdatedAt        time.Time      //
}

// DeviceStore persists devices.
type DeviceStore interface {
	// CreateDevice inserts d.
	CreateDevice(ctx context.Context, d *Device) error
	// UpdateDevice writes every mutable field of d.
	UpdateDevice(ctx context.Context, d *Device) error
	// DeleteDevice removes the device.
	DeleteDevice(ctx context.Context, id string) error
	// FindDevice returns the profile's device, or ENOTFOUND (also for
	// another profile's device).
	FindDevice(ctx context.Context, profileID, id string) (*Device, error)
	// FindDeviceByClientID returns the device with that bus user, or
	// ENOTFOUND. It is not scoped to a profile: it serves the bus, which
	// authenticates a connection (and delivers a device's outbox) before
	// any profile is known; the bus user name is the device's own.
	FindDeviceByClientID(ctx context.Context, clientID string) (*Device, error)
	// FindDeviceByRequest returns the profile's device created by a
	// request command, or ENOTFOUND.
	FindDeviceByRequest(ctx context.Context, profileID, commandID string) (*Device, error)
	// ListDevices returns the profile's devices, oldest first; role "" means any.
	ListDevices(ctx context.Context, profileID, role string) ([]*Device, error)
	// TouchDevice sets LastSeenAt.
	TouchDevice(ctx context.Context, id string, at time.Time) error
}

// Data token states.
const (
	TokenReserved = "reserved" // space reserved, no data yet
	TokenStored   = "stored"   // data on the devices
)

// DataToken is a reservation and, once exchanged, the record of one
// payload: its context, meta, the wrapped layer-2 key and its size. The
// payload itself lives only on the profile's storage devices, as the blob
// named BlobID.
type DataToken struct {
	ID            string         // ULID
	ProfileID     string         //
	TempToken     string         // "tmp-…"
	Token         string         // "dtk-…", "" until permanent
	ReservationID string         // the reserve-token-space command
	BlobID        string         // the payload's name on the devices ("" until exchanged; a new one per payload)
	Context       string         //
	Meta          map[string]any // "file", "information_security_risk", "data" objects
	State         string         // TokenReserved, TokenStored
	Size          int64          // ciphertext bytes (layer 1)
	Chunks        int            // streamed payloads: chunks on the devices; 0 for a single blob
	WrappedKey    []byte         // layer-2 data key sealed under the master key
	Application   string         // OAuth application that acted, if any
	ExpiresAt     time.Time      // reservation / temporary token expiry; zero once permanent
	CreatedAt     time.Time      //
	UpdatedAt     time.Time      //
}

// DataTokenField names a mutable field of a DataToken for UpdateDataToken.
type DataTokenField int

// The fields UpdateDataToken can write.
const (
	FieldToken     DataTokenField = iota // Token
	FieldContext                         // Context
	FieldMeta                            // Meta
	FieldState                           // State
	FieldPayload                         // BlobID, WrappedKey, Size, Chunks
	FieldExpiresAt                       // ExpiresAt
	FieldUpdatedAt                       // UpdatedAt
)

// DataTokenFilter selects data tokens of a profile; empty fields match all.
type DataTokenFilter struct {
	Context, Token, FileName, Extension, DataType string
	Page, PerPage                                 int
}

// DataTokenStore persists data tokens and where their blobs are.
type DataTokenStore interface {
	CreateDataToken(ctx context.Context, t *DataToken) error
	// UpdateDataToken writes t's fields named in fields (DataTokenField…),
	// or all of them when none is named. Naming only what changed spares
	// the index updates of the others.
	UpdateDataToken(ctx context.Context, t *DataToken, fields ...DataTokenField) error
	// UpdateDataTokenIf is UpdateDataToken on condition that the stored
	// UpdatedAt is still version (optimistic concurrency); ECONFLICT if not.
	UpdateDataTokenIf(ctx context.Context, t *DataToken, version time.Time, fields ...DataTokenField) error
	DeleteDataToken(ctx context.Context, id string) error
	// FillReservation stores the payload fields of t (FieldPayload) and
	// marks it TokenStored, only if it is still a reservation that has not
	// expired at now; otherwise ECONFLICT and nothing changes.
	FillReservation(ctx context.Context, t *DataToken, now time.Time) error
	// FindDataToken looks profileID's token up by id, temporary or
	// permanent token; ENOTFOUND (also for another profile's).
	FindDataToken(ctx context.Context, profileID, idOrToken string) (*DataToken, error)
	// FindDataTokenByReservation finds profileID's token reserved by the
	// command commandID; ENOTFOUND (also for another profile's).
	FindDataTokenByReservation(ctx context.Context, profileID, commandID string) (*DataToken, error)
	// FindProfileDataTokenByBlob finds profileID's token whose current
	// payload is blobID; ENOTFOUND (also for another profile's).
	FindProfileDataTokenByBlob(ctx context.Context, profileID, blobID string) (*DataToken, error)
	// FindDataTokenByBlob finds the token whose current payload is blobID,
	// whoever's it is: unscoped, for the reads that have a blob and no
	// profile (a storage device's blob, the validation of a device copy).
	FindDataTokenByBlob(ctx context.Context, blobID string) (*DataToken, error)
	// FindDataTokenByID finds the token with id, whoever's it is:
	// unscoped, for a streamed upload, whose credential (checked before,
	// by its MAC) names the reservation by id and comes with no profile.
	FindDataTokenByID(ctx context.Context, id string) (*DataToken, error)
	// ListDataTokens returns one page of the profile's stored tokens and the total.
	ListDataTokens(ctx context.Context, profileID string, f DataTokenFilter) ([]*DataToken, int, error)
	// ExpiredDataTokens lists tokens never made permanent whose reservation expired.
	ExpiredDataTokens(ctx context.Context, before time.Time, limit int) ([]*DataToken, error)
	// AddExpiredReservation keeps a tombstone of a swept reservation: the
	// hash of its temporary token (or id), its profile and when it expired.
	AddExpiredReservation(ctx context.Context, keyHash, profileID string, expiredAt time.Time) error
	// ExpiredReservation reports whether profileID has a tombstone keyHash.
	ExpiredReservation(ctx context.Context, keyHash, profileID string) (bool, error)
	// PruneExpiredReservations drops up to limit tombstones of reservations
	// that expired before before, and says how many.
	PruneExpiredReservations(ctx context.Context, before time.Time, limit int) (int, error)

	// AddDeviceBlob records that devices durably hold a blob.
	AddDeviceBlob(ctx context.Context, blobID string, size int64, deviceIDs ...string) error
	RemoveDeviceBlob(ctx context.Context, deviceID, blobID string) error
	// BlobHolders lists the devices holding a blob.
	BlobHolders(ctx context.Context, blobID string) ([]string, error)
	// DeviceBlobStats counts a device's blobs and bytes.
	DeviceBlobStats(ctx context.Context, deviceID string) (count int, bytes int64, err error)

	// AddOutbox queues op ("store", "delete") of a blob for a device.
	AddOutbox(ctx context.Context, deviceID, blobID, op string, at time.Time) error
	RemoveOutbox(ctx context.Context, deviceID, blobID, op string) error
	// OutboxDevices lists the devices with queued operations.
	OutboxDevices(ctx context.Context) ([]string, error)
	// Outbox lists what is queued for a device, oldest first.
	Outbox(ctx context.Context, deviceID string, limit int) ([]OutboxEntry, error)

	// CommandCounts counts the profile's succeeded commands of the given
	// types created in [from, to) (zero times: unbounded), per type and UTC
	// day, including the pruned ones (whose counts are kept per whole day:
	// a day counts when it starts within [from, to)). The counting is the
	// database's: the result has one entry per type and day, however many
	// commands there are.
	CommandCounts(ctx context.Context, profileID string, types []string, from, to time.Time) ([]CommandCount, error)
}

// CommandCount is how many commands of one type were created on one UTC day.
type CommandCount struct {
	Type string
	Day  time.Time // midnight UTC
	N    int
}

// OutboxEntry is one queued device operation.
type OutboxEntry struct {
	DeviceID, BlobID, Op string
	CreatedAt            time.Time
}

// Bundle is a device's configuration bundle: what it needs to connect to
// the engine's bus. Each download carries a new ClientSecret.
type Bundle struct {
	DeviceIdentifier string `json:"device-identifier"`
	ClientID         string `json:"client-id"`
	ClientSecret     string `json:"client-secret"`
	BusURL           string `json:"bus-url"`
	BusSubjectPrefix string `json:"bus-subject-prefix"`
	EnginePublicKey  string `json:"engine-public-key"`
	Role             string `json:"role"`
}
