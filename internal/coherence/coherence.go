// Package coherence keeps what an engine caches coherent with what any
// engine commits to the database they share.
//
// An engine caches a few things every request would otherwise read:
// resolved authorization tokens, a profile's storage devices, the profiles
// a policy guards. A write transaction notes the changes such a cache must
// hear of (a Change: a revoked token, a changed profile, a profile's
// devices, a profile's policies); once it commits, and before anyone learns
// of its outcome, the changes are published (Peers.Publish): this engine's
// caches drop what the changes made stale, and so does every other replica
// on the database, each acknowledging over the bus before Publish returns.
// So after the acknowledgement of a change on one replica, the very next
// read on any replica sees it.
//
// Which replicas must acknowledge is the membership kept in the database
// (privicore.ReplicaStore): a replica joins when it starts, renews its
// membership every Options.Renew and leaves when it stops. A member that
// does not acknowledge a change within Options.AckWait is evicted (its row
// deleted), and Publish then waits Options.TTL more: a replica trusts its
// caches only while its last successful renewal began less than TTL ago
// (Valid), and a renewal after the eviction fails, so by then the evicted
// replica has stopped trusting them, has dropped everything and joins
// again. A replica that just joined trusts its caches only after
// Options.WarmUp, by which time every other member lists it among those
// that must acknowledge.
//
// A cache follows three rules: it registers a handler for the kinds it
// keeps (Handle), which drops what a change names and bumps the cache's
// generation; it serves an entry only while Valid; and it keeps what it
// read from the database only if Valid and its generation did not move
// while it read (a change, or a flush, that overlapped the read).
//
// An engine that owns its database (SQLite) has no other replicas: Local
// peers apply changes to this engine's caches only, and are always Valid.
package coherence

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
)

// The kinds of Change.
const (
	Token    = "token"    // a token was revoked or used; Key: its id
	Profile  = "profile"  // a profile changed (password, key); Key: its id
	Devices  = "devices"  // a profile's devices changed; Key: the profile ("": any profile)
	Policies = "policies" // a profile's policy was activated; Key: the profile
	// DataToken is a data_tokens row another replica wrote; Key: its id. A
	// replica's own writes reach its token cache as the rows written
	// (sqlstore), so it is published elsewhere only (PublishWith).
	DataToken = "data-token"
)

// Change names what a committed write made stale. The zero Change is
// "anything may have changed" (a raw statement): every cache is flushed.
type Change struct {
	Kind string `json:"k,omitempty"`
	Key  string `json:"v,omitempty"`
}

// The defaults of Options.
const (
	DefaultRenew   = time.Second
	DefaultTTL     = 4 * time.Second
	DefaultAckWait = time.Second
)

// Options configure Peers.
type Options struct {
	// Subject is the bus subject changes are published on (the engines'
	// prefix + ".coherence").
	Subject string
	// Renew is how often membership is renewed; default DefaultRenew.
	Renew time.Duration
	// TTL is how long after the start of its last successful renewal a
	// replica still trusts its caches; default DefaultTTL. It must exceed
	// Renew by the longest a renewal may take.
	TTL time.Duration
	// AckWait is how long Publish waits for the members' acknowledgements
	// before evicting those that gave none; default DefaultAckWait.
	AckWait time.Duration
	// WarmUp is how long a replica that (re)joined waits before trusting
	// its caches; default 2×Renew + 500 ms, past the age of any member's
	// list of members.
	WarmUp time.Duration
	Logger *slog.Logger
}

// Peers is this engine's side of cache coherence: the handlers of its
// caches and, in cluster mode, its membership and the bus.
type Peers struct {
	id    string
	store privicore.ReplicaStore // nil: Local
	nc    *nats.Conn
	opts  Options
	log   *slog.Logger

	mu       sync.RWMutex
	handlers map[string][]func(key string) // by kind
	flushers []func()

	// Membership (members.go), under state.
	state     sync.Mutex
	joinedAt  time.Time // when the current membership's join was in the database
	renewedAt time.Time // when the last successful renewal (or the join) began
	joined    bool
	members   []string  // the other members, as of membersAt
	membersAt time.Time // when members was read
	epoch     atomic.Uint64

	inbox string
	calls sync.Map // call id → chan string (the members that acknowledged)
	seq   atomic.Uint64
	subs  []*nats.Subscription
	stop  chan struct{}
	done  chan struct{}
	live  atomic.Bool // between Start and Close: Publish reaches the others
}

// Local returns peers for an engine alone on its database: Publish applies
// changes to this engine's caches, and they are always Valid.
func Local() *Peers {
	return &Peers{handlers: map[string][]func(string){}}
}

// New returns the peers of replica id, which shares store with other
// replicas and reaches them over nc. Start joins the membership.
func New(id string, store privicore.ReplicaStore, nc *nats.Conn, opts Options) *Peers {
	if opts.Renew <= 0 {
		opts.Renew = DefaultRenew
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	if opts.WarmUp <= 0 {
		opts.WarmUp = 2*opts.Renew + 500*time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Peers{id: id, store: store, nc: nc, opts: opts, log: opts.Logger, handlers: map[string][]func(string){},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Handle registers h for changes of kind: it is called with the change's
// key ("" for every key of the kind), and must drop what the key names and
// bump its cache's generation before it returns. Register before Start.
func (p *Peers) Handle(kind string, h func(key string)) {
	p.mu.Lock()
	p.handlers[kind] = append(p.handlers[kind], h)
	p.mu.Unlock()
}

// OnFlush registers f, called when the caches must drop everything: a raw
// statement, or this replica lost its membership.
func (p *Peers) OnFlush(f func()) {
	p.mu.Lock()
	p.flushers = append(p.flushers, f)
	p.mu.Unlock()
}

// apply runs the handlers of changes.
func (p *Peers) apply(changes []Change) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range changes {
		if c.Kind == "" {
			p.epoch.Add(1)
			for _, f := range p.flushers {
				f()
			}
			continue
		}
		for _, h := range p.handlers[c.Kind] {
			h(c.Key)
		}
	}
}

// flush drops everything every cache holds.
func (p *Peers) flush() {
	p.apply([]Change{{}})
}

// Epoch grows whenever the caches were flushed: something that trusts a
// view loaded from the database (rather than dropping entries) takes it
// before loading and trusts the view only while it is unchanged.
func (p *Peers) Epoch() uint64 {
	if p == nil {
		return 0
	}
	return p.epoch.Load()
}

// Valid reports whether the caches may be trusted now: always for Local
// peers; in cluster mode while this replica is a member past its warm-up
// whose last successful renewal began less than TTL ago, with the bus
// connected.
func (p *Peers) Valid() bool {
	if p == nil {
		return false
	}
	if p.store == nil {
		return true
	}
	p.state.Lock()
	now := time.Now()
	ok := p.joined && now.Sub(p.joinedAt) >= p.opts.WarmUp && now.Sub(p.renewedAt) < p.opts.TTL-ttlMargin
	p.state.Unlock()
	return ok && p.nc.IsConnected()
}

// ttlMargin is taken off TTL for clocks running at slightly different
// rates and for the scheduling of the renewal.
const ttlMargin = 500 * time.Millisecond

// message is what Publish sends to the other replicas.
type message struct {
	From    string   `json:"from"`
	Changes []Change `json:"changes"`
}

// Publish applies changes to this engine's caches and, in cluster mode,
// to every other member's, returning once each has acknowledged or, for
// those that did not within AckWait, once they have been evicted and their
// caches have expired (TTL).
func (p *Peers) Publish(ctx context.Context, changes []Change) {
	p.PublishWith(ctx, changes, nil)
}

// PublishWith is Publish of changes, and of elsewhere to the other
// replicas only (what this engine's caches already reflect).
func (p *Peers) PublishWith(ctx context.Context, changes, elsewhere []Change) {
	if p == nil || len(changes)+len(elsewhere) == 0 {
		return
	}
	p.apply(changes)
	if p.store == nil || !p.live.Load() {
		return
	}
	if len(elsewhere) > 0 {
		changes = append(changes[:len(changes):len(changes)], elsewhere...)
	}
	members := p.others(ctx)
	if len(members) == 0 {
		return
	}
	data, _ := json.Marshal(message{From: p.id, Changes: changes})
	call := strconv.FormatUint(p.seq.Add(1), 10)
	acks := make(chan string, len(members)+8)
	p.calls.Store(call, acks)
	defer p.calls.Delete(call)
	missing := make(map[string]bool, len(members))
	for _, m := range members {
		missing[m] = true
	}
	if err := p.nc.PublishMsg(&nats.Msg{Subject: p.opts.Subject, Reply: p.inbox + "." + call, Data: data}); err != nil {
		p.log.Warn("publishing a change to the other replicas failed", "err", err)
	} else {
		timer := time.NewTimer(p.opts.AckWait)
		defer timer.Stop()
	wait:
		for len(missing) > 0 {
			select {
			case m := <-acks:
				delete(missing, m)
			case <-timer.C:
				break wait
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	ids := make([]string, 0, len(missing))
	for m := range missing {
		ids = append(ids, m)
	}
	p.log.Warn("replicas did not acknowledge a change in time: evicting them, then waiting for their caches to expire",
		"replicas", strings.Join(ids, ","), "wait", p.opts.TTL)
	if err := p.store.EvictReplicas(context.WithoutCancel(ctx), ids); err != nil {
		p.log.Error("evicting replicas failed", "err", err)
	}
	time.Sleep(p.opts.TTL)
}

// receive is a change published by another replica: apply it, then
// acknowledge.
func (p *Peers) receive(m *nats.Msg) {
	var msg message
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		p.log.Warn("an undecodable change on the bus: flushing the caches", "err", err)
		p.flush()
		return
	}
	if msg.From == p.id {
		return // applied when published
	}
	p.apply(msg.Changes)
	if m.Reply != "" {
		_ = p.nc.Publish(m.Reply, []byte(p.id))
	}
}

// acknowledged is a member's acknowledgement of one of this replica's calls.
func (p *Peers) acknowledged(m *nats.Msg) {
	call := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if ch, ok := p.calls.Load(call); ok {
		select {
		case ch.(chan string) <- string(m.Data):
		default:
		}
	}
}
