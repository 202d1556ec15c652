package voting

import (
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
	"github.com/privicore/privicore/internal/sqlstore"
)

// rig is the voting service as the engine runs it: a real SQLite store,
// the command processor constructed with the gate, the embedded bus
// authenticating devices through the real device service, and real
// authenticator daemons. Its clock can be moved forward (deadlines) without
// waiting.
type rig struct {
	t      *testing.T
	store  *sqlstore.DB
	cmds   *command.Processor
	svc    *Service
	gate   *Gate
	bus    *bus.Bus
	engine *ecdh.PrivateKey
	events *recorder
	skew   atomic.Int64 // nanoseconds added to the clock
}

// recorder keeps what the processor publishes to the profiles' channels.
type recorder struct {
	mu  sync.Mutex
	got []any
}

func (r *recorder) Publish(_ string, data any) {
	r.mu.Lock()
	r.got = append(r.got, data)
	r.mu.Unlock()
}

// of is what was published about a command, in order: pool events
// ("opened 1", "resolved approved") and its statuses ("status 1 <body>").
func (r *recorder) of(commandID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.got {
		switch e := e.(type) {
		case api.PoolOpened:
			if e.CommandID == commandID {
				out = append(out, fmt.Sprint("opened ", e.Attempt))
			}
		case api.PoolResolved:
			if e.CommandID == commandID {
				out = append(out, "resolved "+e.State)
			}
		case command.Event:
			if e.ID == commandID {
				out = append(out, fmt.Sprint("status ", int(e.CommandStatus), " ", e.Body))
			}
		}
	}
	return out
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	store := commandtest.Open(t)
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: store, engine: priv, events: &recorder{}}
	r.gate = NewGate()
	r.cmds = command.New(store, r.events, command.Options{Gate: r.gate, Sweep: time.Hour})
	devices := device.New(store, r.cmds, nil, keys.SignedPublic(priv))
	r.bus, err = bus.Start(bus.Config{Addr: "127.0.0.1:0", DataDir: dir}, devices)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.bus.Close)
	r.svc = New(store, r.cmds, r.gate, Config{Wire: r.bus, EngineKey: priv, CheckEvery: 10 * time.Millisecond})
	r.svc.now = func() time.Time { return time.Now().UTC().Add(time.Duration(r.skew.Load())) }
	if err := r.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.svc.Stop)
	if err := r.cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cmds.Stop)
	return r
}

// later moves the service's clock forward by d.
func (r *rig) later(d time.Duration) { r.skew.Add(int64(d)) }

// authenticatorOf registers an active authenticator device of profileID
// in the store and returns its id and bundle.
func (r *rig) authenticatorOf(profileID, id string) (*privicore.Bundle, *ecdh.PrivateKey) {
	r.t.Helper()
	key, err := keys.Generate()
	if err != nil {
		r.t.Fatal(err)
	}
	secret := "secret-" + id
	sum := sha256.Sum256([]byte(secret))
	now := time.Now().UTC()
	d := &privicore.Device{ID: id, ProfileID: profileID, RequestCommandID: "req-" + id, Name: id, DisplayName: id, Tags: []string{},
		Meta: map[string]any{}, Role: privicore.RoleAuthenticator, State: privicore.DeviceApproved, PublicKey: keys.SignedPublic(key),
		ClientID: protocol.ClientID(id), SecretHash: hex.EncodeToString(sum[:]), CreatedAt: now, UpdatedAt: now}
	if err := r.store.Write(context.Background(), func(q privicore.Queries) error { return q.CreateDevice(context.Background(), d) }); err != nil {
		r.t.Fatal(err)
	}
	return &privicore.Bundle{DeviceIdentifier: id, ClientID: d.ClientID, ClientSecret: secret, BusURL: r.bus.URL(),
		BusSubjectPrefix: protocol.DeviceSubject(r.bus.Prefix(), id), EnginePublicKey: keys.SignedPublic(r.engine), Role: d.Role}, key
}

// ballotLog keeps the ballots an authenticator received and the receipts
// of its answers.
type ballotLog struct {
	mu       sync.Mutex
	ballots  []protocol.Ballot
	receipts []protocol.Receipt
}

func (l *ballotLog) ballotsOf(poolID string) []protocol.Ballot {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []protocol.Ballot
	for _, b := range l.ballots {
		if b.PoolID == poolID {
			out = append(out, b)
		}
	}
	return out
}

// run starts a real authenticator daemon for the device, answering each
// ballot with decide (by attempt).
func (r *rig) run(b *privicore.Bundle, key *ecdh.PrivateKey, decide func(protocol.Ballot) authenticator.Decision) (*authenticator.Authenticator, *ballotLog) {
	r.t.Helper()
	log := &ballotLog{}
	a, err := authenticator.Start(authenticator.Config{Bundle: b, Key: key,
		Decide: func(_ context.Context, bl protocol.Ballot) authenticator.Decision {
			log.mu.Lock()
			log.ballots = append(log.ballots, bl)
			log.mu.Unlock()
			return decide(bl)
		},
		Answered: func(_ protocol.Ballot, _ string, rc protocol.Receipt) {
			log.mu.Lock()
			log.receipts = append(log.receipts, rc)
			log.mu.Unlock()
		}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(a.Close)
	return a, log
}

func always(d authenticator.Decision) func(protocol.Ballot) authenticator.Decision {
	return func(protocol.Ballot) authenticator.Decision { return d }
}

// eventually waits (a generous guard, not a speed check) until ok holds.
func (r *rig) eventually(what string, ok func() bool) {
	r.t.Helper()
	commandtest.Eventually(r.t, what, ok)
}

// outcome waits for the command to finish and returns it.
func (r *rig) outcome(id string) *privicore.Command {
	r.t.Helper()
	return commandtest.Settle(r.t, r.store, &privicore.Command{ID: id}, nil)
}

// pool reads the profile's pool.
func (r *rig) pool(profileID, id string) *privicore.Pool {
	r.t.Helper()
	pl, err := r.svc.Pool(context.Background(), profileID, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return pl
}

// strategy sets the profile's strategy through its command.
func (r *rig) strategy(profileID string, ch StrategyChange) {
	r.t.Helper()
	c, err := r.svc.ChangeStrategy(context.Background(), profileID, ch)
	if err != nil {
		r.t.Fatal(err)
	}
	if c = r.outcome(c.ID); c.Status != privicore.CommandSucceeded {
		r.t.Fatalf("strategy change: %v %s", c.Status, c.Body)
	}
}

func ptr[T any](v T) *T { return &v }
