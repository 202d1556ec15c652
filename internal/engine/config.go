package engine

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/privicore/privicore/internal/lease"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/ratelimit"
)

// The engine's defaults: what Config's zero values stand for, and the
// defaults of `privicore serve`'s flags.
const (
	DefaultAddr            = "127.0.0.1:8009"   // API listener
	DefaultWSAddr          = "127.0.0.1:8083"   // WebSocket proxy listener
	DefaultDataDir         = "./privicore-data" // database and key files
	DefaultBusAddr         = "127.0.0.1:4222"   // device listener of the embedded NATS server
	DefaultTokenTTL        = 8 * time.Hour      // authorization token lifetime
	DefaultMinAcks         = 1                  // storage devices that must write an exchange durably
	DefaultShutdownTimeout = 10 * time.Second   // graceful shutdown bound
	// DefaultCommandRetention is serve's --command-retention. Config's zero
	// CommandRetention keeps finished commands forever.
	DefaultCommandRetention = 30 * 24 * time.Hour
	// DefaultLeaseTTL is serve's --lease-ttl and Config's zero LeaseTTL.
	DefaultLeaseTTL = lease.DefaultTTL
)

// Config is the engine's configuration.
type Config struct {
	Addr     string // API listener; default DefaultAddr
	WSAddr   string // separate WebSocket proxy listener; default DefaultWSAddr; "-" for none (it is also at /ws on Addr)
	DataDir  string // database and key files; default DefaultDataDir
	Database string // database DSN; default the SQLite file privicore.db in DataDir
	// KEK is the key-encryption key (keyring.KEKSize bytes, from
	// keyring.ReadKEKFile): with it, the engine key and the master key live
	// in the database, sealed under it, and every replica on that database
	// must have the same KEK. Without it they are files in DataDir. It is
	// required with PostgreSQL (ErrNeedKEK), optional with SQLite.
	KEK []byte
	// ReplicaID names this engine among the replicas on one database: the
	// owner of the leases it takes (commands, periodic jobs) and the
	// source of what it publishes on the bus. Default: the host name and
	// a random suffix, new at every start (a restarted replica is a new
	// owner; the leases of the old one expire).
	ReplicaID string

	TokenTTL time.Duration // authorization token lifetime; default DefaultTokenTTL
	// CommandRetention is how long finished commands are kept; older ones
	// are pruned hourly, their counts kept for the statistics. 0 keeps them
	// forever (serve's default is DefaultCommandRetention).
	CommandRetention time.Duration
	// LeaseTTL is how long a replica's leases (on the commands it runs and
	// the periodic jobs it holds) outlive their last renewal, renewed every
	// LeaseTTL/3: after a crash, another replica resumes that work within
	// about that long. Zero: DefaultLeaseTTL (serve's --lease-ttl).
	LeaseTTL time.Duration
	// Password-check limits (profile.Config): failed checks allowed per
	// (username, client address), per username and per client address;
	// registrations per client address; argon2id runs at once. Zero values
	// are the defaults; ratelimit.NoLimit turns a limit off.
	AuthUserAddrFailures ratelimit.Quota
	AuthUserFailures     ratelimit.Quota
	AuthAddrFailures     ratelimit.Quota
	RegisterPerAddr      ratelimit.Quota
	HashConcurrency      int
	// PasswordParams are argon2id's costs for new password hashes; zero:
	// password.DefaultParams. Only tests lower them (serve has no flag).
	PasswordParams password.Params
	// CacheRenew is how often a replica renews its membership of cache
	// coherence (coherence.Options.Renew; a joining replica's warm-up is
	// two renewals and a half second); zero: coherence.DefaultRenew. Only
	// tests lower it (serve has no flag).
	CacheRenew time.Duration

	BusAddr string // device listener of the embedded NATS server; default DefaultBusAddr
	NATSURL string // connect to this NATS instead of embedding one
	// NATSCalloutSeed, with NATSURL, makes the engine the server's auth
	// callout for devices (an account seed "SA…"); NATSAccount is the
	// account devices are placed in (default "$G").
	NATSCalloutSeed string
	NATSAccount     string
	// NATSSystemURL, with NATSURL, connects to the server's system account
	// so that a removed device's connections are closed at once.
	NATSSystemURL string
	// DeviceBusURL is the bus URL devices are given in their bundles
	// (bus.Config.DeviceURL); default: NATSURL without credentials, or the
	// embedded server's address.
	DeviceBusURL string

	MinAcks   int    // storage devices that must write an exchange durably; default DefaultMinAcks
	PublicURL string // base of the URLs the engine hands out; default http://<Addr>

	ChannelBufferTTL time.Duration // how long events wait for a socket; default 60s
	PingInterval     time.Duration // WebSocket keepalive; default 25s
	VoteCheckEvery   time.Duration // how often overdue voting pools are resolved; default 200ms
	ShutdownTimeout  time.Duration // graceful shutdown bound; default DefaultShutdownTimeout
	Logger           *slog.Logger  // default: discard

	// WSJoinTimeout closes a WebSocket not joined to a channel for that
	// long; default wsproxy.DefaultJoinTimeout (10s), negative: never.
	WSJoinTimeout time.Duration
	// WSMaxConnsPerAddr bounds open WebSockets per client address; default
	// wsproxy.DefaultMaxConnsPerAddr (256), negative: no limit.
	WSMaxConnsPerAddr int
	// Limits bound slow and idle clients and connections (limits.go).
	Limits Limits
	// TrustedProxies are the load balancers (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client for the per-address limits;
	// their own connections are not capped per address. None by default.
	TrustedProxies []string
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.WSAddr == "" {
		c.WSAddr = DefaultWSAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.DataDir, "privicore.db")
	}
	if c.BusAddr == "" {
		c.BusAddr = DefaultBusAddr
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.MinAcks <= 0 {
		c.MinAcks = DefaultMinAcks
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ReplicaID == "" {
		c.ReplicaID = newReplicaID()
	}
}

// newReplicaID is a default Config.ReplicaID: host-xxxxxxxx.
func newReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "engine"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
