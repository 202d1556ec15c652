// Package engine assembles the Privicore engine from its parts: the
// database, the command processor, the domain services, the HTTP API and
// the WebSocket channel proxy. cmd/privicore serve and the tests both run it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

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
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/sqlstore"
	"github.com/privicore/privicore/internal/voting"
	"github.com/privicore/privicore/internal/wsproxy"
)

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
	// undo closes, newest first, what was started when a later part fails.
	undo := []func(){func() { store.Close() }}
	fail := func(err error) (*Engine, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	secrets, err := keyring.Open(ctx, store, cfg.KEK, cfg.DataDir, cfg.Logger)
	if err != nil {
		return fail(err)
	}
	priv := secrets.Engine
	cfg.Logger.Info("engine keys opened", "in_database", cfg.KEK != nil, "master_key_id", secrets.MasterID(), "replica", cfg.ReplicaID)
	e := &Engine{cfg: cfg, log: cfg.Logger, Store: store, EngineKey: keys.SignedPublic(priv), addrs: addrs, stopBg: make(chan struct{})}
	e.Jobs = lease.NewSet(store, cfg.ReplicaID, lease.Options{TTL: cfg.LeaseTTL, Sole: !e.Shared(), Logger: cfg.Logger})
	undo = append(undo, e.Jobs.Close)

	e.Bus, err = bus.Start(bus.Config{Addr: cfg.BusAddr, DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, CalloutSeed: cfg.NATSCalloutSeed,
		CalloutAccount: cfg.NATSAccount, SystemURL: cfg.NATSSystemURL, DeviceURL: cfg.DeviceBusURL, Logger: cfg.Logger}, device.NewAuthenticator(store))
	if err != nil {
		return fail(err)
	}
	undo = append(undo, e.Bus.Close)
	// The caches hear of every committed change through the peers: this
	// engine's own and, in cluster mode, every replica's (coherence).
	e.peers = coherence.Local()
	if e.Shared() {
		e.peers = coherence.New(cfg.ReplicaID, store, e.Bus.Conn(), coherence.Options{Subject: e.Bus.Prefix() + ".coherence", Renew: cfg.CacheRenew, Logger: cfg.Logger})
		if err := e.peers.Start(ctx); err != nil {
			return fail(err)
		}
		undo = append(undo, e.peers.Close)
	}
	store.SetPeers(e.peers)
	var relay wsproxy.Relay // shared mode: the sockets' events go through the bus (events.go)
	if e.Shared() {
		if e.events, err = e.newEvents(); err != nil {
			return fail(err)
		}
		undo = append(undo, e.events.Close)
		relay = e.events
	}
	e.Hub = wsproxy.NewHub(wsproxy.Options{Verifier: channelVerifier{profile.NewTokens(store)}, Logger: cfg.Logger, BufferTTL: cfg.ChannelBufferTTL, PingInterval: cfg.PingInterval,
		JoinTimeout: cfg.WSJoinTimeout, MaxConnsPerAddr: cfg.WSMaxConnsPerAddr, Relay: relay, Addresses: addrs})
	undo = append(undo, e.Hub.Close)
	gate := voting.NewGate() // which commands wait for a vote; the voting service below opens the pools
	if e.Shared() {
		gate = voting.NewSharedGate(store, e.peers) // another replica's activation is heard of through the peers
	}
	copts := command.Options{Logger: cfg.Logger, Retention: cfg.CommandRetention, Gate: gate,
		PruneLease: e.Jobs.Lease(LeaseCommandPrune), Lease: cfg.LeaseTTL, Replica: cfg.ReplicaID, Shared: e.Shared()}
	if e.Shared() {
		// A replica that dies between recording outcomes and publishing their
		// acks has them published by another (command/announce.go).
		copts.Announcers, copts.AnnounceLease = store, e.Jobs.Lease(LeaseCommandAnnounce)
	}
	e.Commands = command.New(store, e.Hub, copts)
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
		return fail(err)
	}
	undo = append(undo, e.Storage.Stop)
	if err := e.Voting.Start(ctx); err != nil {
		return fail(fmt.Errorf("voting: %w", err))
	}
	undo = append(undo, e.Voting.Stop)
	if err := e.Commands.Start(ctx); err != nil {
		return fail(fmt.Errorf("resume commands: %w", err))
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
