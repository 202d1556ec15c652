// Package bus runs the message bus between the engine and its devices: an
// embedded NATS server whose device connections authenticate against the
// engine's database, each device allowed only its own subjects. The
// embedded server runs JetStream with its state under the data directory
// (<data-dir>/bus), in the engine's account; devices cannot reach its API.
// Durable delivery to devices is the storage outbox's job
// (internal/fanout), so no payload is kept on the bus.
package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/protocol"
)

// engineUser is the engine's own bus user.
const engineUser = "privicore-engine"

// DeviceAuthenticator checks a device's bus credentials: it returns the
// device id when clientID and secret belong to an approved device.
type DeviceAuthenticator interface {
	AuthenticateDevice(clientID, secret string) (deviceID string, ok bool)
}

// Config configures the bus.
type Config struct {
	Addr    string // device listener; default 127.0.0.1:4222; port 0 picks one
	DataDir string // JetStream's state goes under DataDir/bus; empty: a temporary directory
	Prefix  string // subject prefix; default protocol.DefaultPrefix
	// NATSURL, when set, connects to an external NATS instead of embedding
	// one (credentials in the URL). Devices are then authenticated through
	// the server's auth callout when CalloutSeed is set (see callout.go),
	// else by the server's own configuration.
	NATSURL string
	// CalloutSeed is the auth callout issuer's account seed ("SA…").
	CalloutSeed string
	// CalloutAccount is the account devices are placed in; default "$G".
	CalloutAccount string
	// CalloutTTL is how long a device's grant lasts; default DefaultCalloutTTL.
	CalloutTTL time.Duration
	// SystemURL, with NATSURL, is a connection (credentials in the URL) to
	// the external server's system account: the engine then closes a
	// removed device's connections at once (see kick); without it they end
	// when their grant does.
	SystemURL string
	// DeviceURL is the bus URL (comma-separated for several nodes) that
	// devices are given in their bundles, when they reach the bus by
	// another address than the engine does (a load balancer, a container
	// network, an embedded server listening on 0.0.0.0). Default: NATSURL
	// without its credentials, or the embedded server's address.
	DeviceURL string
	Logger    *slog.Logger
}

// Bus is the engine's side of the bus.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server // nil with an external NATS
	nc     *nats.Conn
	sys    *nats.Conn     // the external server's system account (Config.SystemURL), or nil
	kicks  sync.WaitGroup // kick goroutines, waited for by Close
	auth   DeviceAuthenticator
	secret string // the engine user's password
	url    string

	// online caches which bus users are connected: Connz walks every
	// connection under the server's lock, too slow for every store.
	onlineMu sync.Mutex
	online   map[string]bool
	probed   map[string]time.Time // external NATS: when each user's presence was last probed
	onlineAt time.Time
}

// Start runs the embedded server (or connects to cfg.NATSURL) and connects
// the engine.
func Start(cfg Config, auth DeviceAuthenticator) (*Bus, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = protocol.DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, auth: auth}
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("privicore-engine"), nats.MaxReconnects(-1), nats.Timeout(connectTimeout))
		if err != nil {
			return nil, fmt.Errorf("bus: connect %s: %w", cfg.NATSURL, err)
		}
		b.nc, b.url = nc, deviceURL(cfg.NATSURL)
		if cfg.SystemURL != "" {
			if b.sys, err = nats.Connect(cfg.SystemURL, nats.Name("privicore-engine-system"), nats.MaxReconnects(-1), nats.Timeout(connectTimeout)); err != nil {
				nc.Close()
				return nil, fmt.Errorf("bus: connect to the system account: %w", err)
			}
		}
		if cfg.CalloutSeed != "" {
			if err := b.startCallout(); err != nil {
				b.Close()
				return nil, err
			}
		}
		return b, nil
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("bus: address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bus: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	var raw [32]byte
	rand.Read(raw[:])
	b.secret = hex.EncodeToString(raw[:])
	opts := &server.Options{
		ServerName:                 "privicore",
		Host:                       host,
		Port:                       port,
		NoSigs:                     true,
		NoLog:                      true,
		MaxPayload:                 8 << 20,
		CustomClientAuthentication: authenticator{b},
		JetStream:                  true,
		StoreDir:                   StoreDir(cfg.DataDir),
		JetStreamMaxMemory:         JetStreamMaxMemory,
		JetStreamMaxStore:          JetStreamMaxStore,
	}
	if err := privateStoreDir(opts.StoreDir); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if err := startServer(srv, cfg.Addr, cfg.Logger); err != nil {
		return nil, err
	}
	b.srv = srv
	b.url = "nats://" + srv.Addr().String()
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(engineUser, b.secret), nats.Name("privicore-engine"), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: engine connection: %w", err)
	}
	b.nc = nc
	return b, nil
}

// JetStream's limits on the embedded server.
const (
	JetStreamMaxMemory = 64 << 20 // bytes of memory-backed streams
	JetStreamMaxStore  = 1 << 30  // bytes of file-backed streams
)

// StoreDir is where the embedded server keeps JetStream's state: "bus"
// under the engine's data directory (the server adds "jetstream" below it).
// An empty dataDir leaves the choice to the server (a temporary directory).
func StoreDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "bus")
}

// JetStreamInfo checks that the engine's account can use the embedded
// server's JetStream and returns the server's JetStream limits. With an
// external NATS, JetStream is that server's business: it returns an error.
func (b *Bus) JetStreamInfo() (*server.JetStreamConfig, error) {
	if b.srv == nil {
		return nil, errors.New("bus: JetStream belongs to the external NATS")
	}
	js, err := b.nc.JetStream()
	if err != nil {
		return nil, fmt.Errorf("bus: JetStream: %w", err)
	}
	if _, err := js.AccountInfo(); err != nil {
		return nil, fmt.Errorf("bus: JetStream: %w", err)
	}
	cfg := b.srv.JetStreamConfig()
	if cfg == nil {
		return nil, errors.New("bus: JetStream is not enabled")
	}
	return cfg, nil
}

// deviceURL is the external servers' URLs (comma-separated) without the
// engine's credentials.
func deviceURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "" // unparsable: never hand out what may hold a password
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// URL is where devices connect (it goes into their configuration bundle).
func (b *Bus) URL() string {
	if b.cfg.DeviceURL != "" {
		return b.cfg.DeviceURL
	}
	return b.url
}

// Prefix is the subject prefix.
func (b *Bus) Prefix() string { return b.cfg.Prefix }

// Conn is the engine's connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// permissions are what one device may do: its own subjects, its own inbox.
func permissions(prefix, deviceID string) *server.Permissions {
	root := protocol.DeviceSubject(prefix, deviceID)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{protocol.FromAll(root)}},
		Subscribe: &server.SubjectPermission{Allow: []string{protocol.ToAll(root), protocol.InboxPrefix(deviceID) + ".>"}},
		Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
	}
}

// authenticator checks every connection to the embedded server.
type authenticator struct{ b *Bus }

// Check implements server.Authentication.
func (a authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o == nil {
		return false
	}
	if o.Username == engineUser {
		if len(o.Password) != len(a.b.secret) || !constantEqual(o.Password, a.b.secret) {
			return false
		}
		c.RegisterUser(&server.User{Username: engineUser})
		return true
	}
	id, ok := a.b.auth.AuthenticateDevice(o.Username, o.Password)
	if !ok {
		a.b.log.Info("bus connection refused", "client", o.Username)
		return false
	}
	c.RegisterUser(&server.User{Username: o.Username, Permissions: permissions(a.b.cfg.Prefix, id)})
	a.b.setOnline(o.Username, true)
	return true
}

func constantEqual(a, b string) bool {
	var v byte
	for i := range len(a) {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// Ping checks the engine's connection (for /health).
func (b *Bus) Ping(ctx context.Context) error {
	if b.nc.Status() != nats.CONNECTED {
		return fmt.Errorf("bus: %s", b.nc.Status())
	}
	deadline, ok := ctx.Deadline()
	timeout := 2 * time.Second
	if ok {
		timeout = time.Until(deadline)
	}
	return b.nc.FlushTimeout(timeout)
}

// Close drains the engine's connection and stops the embedded server.
func (b *Bus) Close() {
	b.kicks.Wait()
	if b.sys != nil {
		b.sys.Close()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// connectTimeout bounds a connection's handshake with the NATS server
// (nats.go's default is 2 s). A device's handshake waits for the auth
// callout, i.e. for an engine, which a busy machine may keep longer: a
// handshake cut short is a disconnection and a retry, and the device is
// offline meanwhile.
const connectTimeout = 10 * time.Second

// firstConnectWait is how long Dial waits for a first connection that
// did not succeed at once (the engine's auth callout busy, the server
// starting) before returning a connection that keeps trying.
const firstConnectWait = 10 * time.Second

// Dial connects a device with its bundle: its credentials, its inbox
// prefix, reconnecting by itself forever. hello runs on every (re)connect
// with the connection (the caller announces itself there). It returns
// once connected, or after firstConnectWait with the connection still
// trying in the background (a device may start before its engine).
func Dial(b *privicore.Bundle, name string, log *slog.Logger, hello func(*nats.Conn)) (*nats.Conn, error) {
	connected := make(chan struct{})
	var once sync.Once
	onConnect := func(nc *nats.Conn) {
		once.Do(func() { close(connected) })
		hello(nc)
	}
	nc, err := nats.Connect(b.BusURL,
		nats.UserInfo(b.ClientID, b.ClientSecret),
		nats.CustomInboxPrefix(protocol.InboxPrefix(b.DeviceIdentifier)),
		nats.Name(name+"-"+b.DeviceIdentifier),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true), nats.Timeout(connectTimeout),
		nats.ReconnectHandler(hello),
		nats.ConnectHandler(onConnect),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "err", err)
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", b.BusURL, err)
	}
	if !nc.IsConnected() {
		t := time.NewTimer(firstConnectWait)
		defer t.Stop()
		select {
		case <-connected:
		case <-t.C:
			log.Warn("not connected to the bus yet; still trying", "url", b.BusURL)
		}
	}
	return nc, nil
}
