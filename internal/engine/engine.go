// Package engine assembles the Privicore engine from its parts: the
// database, the command processor, the domain services, the HTTP API and
// the WebSocket channel proxy. cmd/privicore serve and the tests both run it.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/clientaddr"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/fanout"
	"github.com/privicore/privicore/internal/httpapi"
	"github.com/privicore/privicore/internal/keyring"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/layer2"
	"github.com/privicore/privicore/internal/lease"
	"github.com/privicore/privicore/internal/oauth"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/ratelimit"
	"github.com/privicore/privicore/internal/sqlstore"
	"github.com/privicore/privicore/internal/voting"
	"github.com/privicore/privicore/internal/wsproxy"
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

// ReplicaID is the engine's Config.ReplicaID (or its default).
func (e *Engine) ReplicaID() string { return e.cfg.ReplicaID }

// Shared reports whether other replicas may run on the engine's database:
// true on PostgreSQL (replicas then coordinate through the database and
// the bus), false on SQLite (one engine owns the file).
func (e *Engine) Shared() bool { return sqlstore.IsPostgres(e.cfg.Database) }

// Engine is a running engine.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	Store      *sqlstore.DB
	Commands   *command.Processor
	Profiles   *profile.Service
	Devices    *device.Service
	Storage    *fanout.Service
	DataTokens *datatoken.Service
	OAuth      *oauth.Service
	Voting     *voting.Service
	Bus        *bus.Bus
	Hub        *wsproxy.Hub
	Jobs       *lease.Set // the leases of the periodic jobs (jobs.go)
	EngineKey  string     // the engine's signed public key

	events *bus.Events // shared mode: the hub's relay; nil with SQLite
	peers  *coherence.Peers

	handler   http.Handler
	listeners []net.Listener
	servers   []*http.Server
	addrs     *clientaddr.Resolver // the client address behind trusted proxies
	stopBg    chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// ErrNeedKEK is New's error for PostgreSQL without Config.KEK: replicas on
// one database share their keys through it, sealed under a KEK (keyring).
var ErrNeedKEK = errors.New("PostgreSQL keeps the engine key and the master key in the database, sealed under a key-encryption key: " +
	"make one with `privicore kek generate FILE` and give every engine --kek-file FILE (or PRIVICORE_KEK_FILE)")

// New opens the data dir and database, opens the engine's keys (keyring:
// created on first start), and resumes pending commands. Call Listen, then
// Serve.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := keys.CheckPrivateDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	addrs, err := clientaddr.New(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if cfg.KEK == nil && sqlstore.IsPostgres(cfg.Database) {
		return nil, ErrNeedKEK
	}
	store, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	secrets, err := keyring.Open(ctx, store, cfg.KEK, cfg.DataDir, cfg.Logger)
	if err != nil {
		store.Close()
		return nil, err
	}
	priv := secrets.Engine
	cfg.Logger.Info("engine keys opened", "in_database", cfg.KEK != nil, "master_key_id", secrets.MasterID(), "replica", cfg.ReplicaID)
	e := &Engine{cfg: cfg, log: cfg.Logger, Store: store, EngineKey: keys.SignedPublic(priv), addrs: addrs, stopBg: make(chan struct{})}
	e.Jobs = lease.NewSet(store, cfg.ReplicaID, lease.Options{Sole: !e.Shared(), Logger: cfg.Logger})

	e.Bus, err = bus.Start(bus.Config{Addr: cfg.BusAddr, DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, CalloutSeed: cfg.NATSCalloutSeed,
		CalloutAccount: cfg.NATSAccount, SystemURL: cfg.NATSSystemURL, DeviceURL: cfg.DeviceBusURL, Logger: cfg.Logger}, device.NewAuthenticator(store))
	if err != nil {
		e.Jobs.Close()
		store.Close()
		return nil, err
	}
	// The caches hear of every committed change through the peers: this
	// engine's own and, in cluster mode, every replica's (coherence).
	e.peers = coherence.Local()
	if e.Shared() {
		e.peers = coherence.New(cfg.ReplicaID, store, e.Bus.Conn(), coherence.Options{Subject: e.Bus.Prefix() + ".coherence", Logger: cfg.Logger})
		if err := e.peers.Start(ctx); err != nil {
			e.Bus.Close()
			e.Jobs.Close()
			store.Close()
			return nil, err
		}
	}
	store.SetPeers(e.peers)
	var relay wsproxy.Relay // shared mode: the sockets' events go through the bus (events.go)
	if e.Shared() {
		if e.events, err = e.newEvents(); err != nil {
			e.peers.Close()
			e.Bus.Close()
			e.Jobs.Close()
			store.Close()
			return nil, err
		}
		relay = e.events
	}
	e.Hub = wsproxy.NewHub(wsproxy.Options{Verifier: channelVerifier{profile.NewTokens(store)}, Logger: cfg.Logger, BufferTTL: cfg.ChannelBufferTTL, PingInterval: cfg.PingInterval,
		JoinTimeout: cfg.WSJoinTimeout, MaxConnsPerAddr: cfg.WSMaxConnsPerAddr, Relay: relay, Addresses: addrs})
	gate := voting.NewGate() // which commands wait for a vote; the voting service below opens the pools
	if e.Shared() {
		gate = voting.NewSharedGate(store, e.peers) // another replica's activation is heard of through the peers
	}
	e.Commands = command.New(store, e.Hub, command.Options{Logger: cfg.Logger, Retention: cfg.CommandRetention, Gate: gate,
		PruneLease: e.Jobs.Lease(LeaseCommandPrune), Replica: cfg.ReplicaID, Shared: e.Shared()})
	e.Devices = device.New(store, e.Commands, e.Bus, e.EngineKey)
	e.Profiles = profile.New(store, e.Commands, profile.Config{TokenTTL: cfg.TokenTTL, Logger: cfg.Logger,
		UserAddrFailures: cfg.AuthUserAddrFailures, UserFailures: cfg.AuthUserFailures, AddrFailures: cfg.AuthAddrFailures,
		RegisterPerAddr: cfg.RegisterPerAddr, HashConcurrency: cfg.HashConcurrency, PasswordParams: cfg.PasswordParams,
		Counters: e.counters(), Peers: e.peers}, e.Devices, e.Hub.CloseToken)
	sealer := layer2.New(secrets.Master)
	e.Storage = fanout.New(store, e.Bus, fanout.PeerDeviceChanges(e.peers), layer2.NewValidator(sealer, store), cfg.Logger)
	e.Storage.Handle(e.Commands)
	e.DataTokens = datatoken.New(store, e.Commands, e.Storage, sealer, datatoken.Config{MinAcks: cfg.MinAcks, PublicURL: e.publicURL, Logger: cfg.Logger})

	e.OAuth = oauth.New(store, e.Commands, e.Profiles)
	e.Voting = voting.New(store, e.Commands, gate, voting.Config{Wire: e.Bus, EngineKey: priv, Logger: cfg.Logger, CheckEvery: cfg.VoteCheckEvery,
		Deadlines: e.Jobs.Lease(LeaseVotingDeadlines)})

	api := &httpapi.Server{Store: store, Commands: e.Commands, Profiles: e.Profiles, Devices: e.Devices, Storage: e.Storage, DataTokens: e.DataTokens,
		OAuth: e.OAuth, Voting: e.Voting, Channels: e.Hub.Handler(),
		EngineKey: e.EngineKey, Logger: cfg.Logger, Checks: map[string]func(context.Context) error{"bus": e.Bus.Ping}, Addresses: addrs}
	api.BodyLimits = cfg.Limits.Body
	e.handler = api.Handler()

	if err := e.Storage.Start(e.Jobs.Lease(LeaseOutbox)); err != nil {
		e.Hub.Close()
		e.Jobs.Close()
		e.peers.Close()
		e.Bus.Close()
		store.Close()
		return nil, err
	}
	if err := e.Voting.Start(ctx); err != nil {
		e.Storage.Stop()
		e.Hub.Close()
		e.Jobs.Close()
		e.peers.Close()
		e.Bus.Close()
		store.Close()
		return nil, fmt.Errorf("voting: %w", err)
	}
	if err := e.Commands.Start(ctx); err != nil {
		e.Voting.Stop()
		e.Storage.Stop()
		e.Hub.Close()
		e.Jobs.Close()
		e.peers.Close()
		e.Bus.Close()
		store.Close()
		return nil, fmt.Errorf("resume commands: %w", err)
	}
	e.wg.Add(1)
	go e.janitor()
	return e, nil
}

// channelVerifier checks a channel join's token against the store
// (uncached, profile.Tokens); the token's record gives what the socket may
// read on the channel.
type channelVerifier struct{ tokens *profile.Tokens }

func (v channelVerifier) VerifyChannelToken(ctx context.Context, token string) (wsproxy.Grant, error) {
	t, err := v.tokens.Channel(ctx, token)
	if err != nil {
		return wsproxy.Grant{}, err
	}
	return wsproxy.Grant{ProfileID: t.ProfileID, TokenID: t.ID, ExpiresAt: t.ExpiresAt,
		OAuth: t.Kind == privicore.TokenOAuth, Application: t.Application, Scopes: t.Scope}, nil
}

// Handler is the API (with the WebSocket proxy at /ws).
func (e *Engine) Handler() http.Handler { return e.handler }

// Listen binds the API and WebSocket listeners, both under one set of
// connection caps (Limits).
func (e *Engine) Listen() error {
	limits := e.cfg.Limits.resolved()
	caps := newConnLimiter(limits.MaxConns, limits.MaxConnsPerAddr, e.addrs, e.log)
	e.log.Info("connection limits", "max_conns", limits.MaxConns, "max_conns_per_addr", limits.MaxConnsPerAddr) // 0: none
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", e.cfg.Addr, err)
	}
	ln = caps.wrap(ln)
	e.listeners = append(e.listeners, ln)
	e.servers = append(e.servers, limits.server(e.handler, e.errorLog()))
	if e.cfg.WSAddr != "-" {
		ws, err := net.Listen("tcp", e.cfg.WSAddr)
		if err != nil {
			ln.Close()
			e.listeners = nil
			e.servers = nil
			return fmt.Errorf("listen %s: %w", e.cfg.WSAddr, err)
		}
		e.listeners = append(e.listeners, caps.wrap(ws))
		e.servers = append(e.servers, limits.server(e.Hub.Handler(), e.errorLog()))
	}
	return nil
}

// errorLog is the http.Server's log (connection errors: debug level).
func (e *Engine) errorLog() *log.Logger { return slog.NewLogLogger(e.log.Handler(), slog.LevelDebug) }

// publicURL is the base of the URLs the engine hands out: PublicURL, or
// http://<the bound address> once Listen has bound it.
func (e *Engine) publicURL() string {
	if e.cfg.PublicURL != "" || len(e.listeners) == 0 {
		return e.cfg.PublicURL
	}
	return "http://" + e.Addr()
}

// Addr is the API's bound address (after Listen).
func (e *Engine) Addr() string { return e.listeners[0].Addr().String() }

// WSAddr is the WebSocket proxy's bound address, "" if it has none.
func (e *Engine) WSAddr() string {
	if len(e.listeners) < 2 {
		return ""
	}
	return e.listeners[1].Addr().String()
}

// Serve serves until ctx ends, then shuts down gracefully.
func (e *Engine) Serve(ctx context.Context) error {
	errc := make(chan error, len(e.servers))
	for i, srv := range e.servers {
		go func(srv *http.Server, ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(srv, e.listeners[i])
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the servers (waiting up to ShutdownTimeout for requests in
// flight), the sockets, the command processor and the database. Commands not
// yet executed stay recorded and resume at the next start.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout)
		defer cancel()
		e.Hub.Close()
		for _, srv := range e.servers {
			if serr := srv.Shutdown(ctx); serr != nil && err == nil {
				err = serr
			}
		}
		close(e.stopBg)
		e.wg.Wait()
		e.Commands.Stop()
		e.Voting.Stop()
		e.Storage.Stop()
		e.Jobs.Close() // after the jobs stopped: releases their leases
		e.peers.Close()
		if e.events != nil {
			e.events.Close()
		}
		e.Bus.Close()
		if cerr := e.Store.Close(); cerr != nil && err == nil {
			err = cerr
		}
	})
	return err
}

// CachesTrusted reports whether the engine's caches may be used now
// (coherence.Peers.Valid): always alone on SQLite; in cluster mode once the
// replica is a member past its warm-up.
func (e *Engine) CachesTrusted() bool { return e.peers.Valid() }
