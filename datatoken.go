package privicore

import (
	"context"
	"time"
)

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
