// Package command is the engine's asynchronous command model: a command is
// recorded durably before its 202, executed exactly once by a handler whose
// state change commits together with the command's final status, and its
// outcome is published on the profile's channel. Commands left pending by a
// crash are resumed on start.
package command

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/lease"
)

// EventCommand is the data.type of a command outcome event.
const EventCommand = "X-DPT-CAB-ID"

// BodySucceeded is the ack body of a command whose handler returned none.
const BodySucceeded = "Command completed successfully"

// ReasonFailed is the rejection reason of a command that failed for a
// transient reason more than MaxAttempts times.
const ReasonFailed = "command.failed"

// Result is what a handler returns on success.
type Result struct {
	// Body is the ack body: "" means "Command completed successfully".
	Body string
	// Notify names a profile, besides the command's own, to send the outcome to.
	Notify string
	// After runs once the outcome is committed (e.g. closing revoked sockets).
	After func()
}

// Handler executes one command type inside the transaction that also
// records the command's outcome. A *privicore.Error from the handler (other
// than EUNAVAILABLE and EINTERNAL) rejects the command with its Reason; any
// other error is transient and the command is retried. Handlers must only
// change state through q, so that a rejection leaves nothing applied.
type Handler func(ctx context.Context, q privicore.Queries, c *privicore.Command) (Result, error)

// Gate holds commands for a vote of the profile's authenticators
// (internal/voting implements it). A held command stays pending until the
// gate calls Resume; it does not hold back later commands with its ordering
// key, and its own checks run when it is finally applied.
type Gate interface {
	// Gated reports whether c, which fires event, may need a vote. It must
	// be cheap: it is asked for every command that fires an event.
	Gated(ctx context.Context, c *privicore.Command, event string) bool
	// Check decides a gated command: run it now (proceed), hold it (no
	// error, !proceed), or reject it (a *privicore.Error with a reason).
	Check(ctx context.Context, c *privicore.Command, event string) (proceed bool, err error)
}

// Publisher delivers events to a profile's channel.
type Publisher interface {
	Publish(profileID string, data any)
}

// Event is the data of an X-DPT-CAB-ID event.
type Event struct {
	Type          string                  `json:"type"`
	ID            string                  `json:"id"`
	CommandStatus privicore.CommandStatus `json:"command_status"`
	Body          string                  `json:"body"`
	// Actor is who submitted the command (privicore.Command.Actor); not
	// sent: the channel proxy uses it to route acks of an application's
	// commands to that application's sockets only.
	Actor string `json:"-"`
}

// Options configures a Processor.
type Options struct {
	Workers     int // concurrent executions; default 64
	MaxAttempts int // transient failures before rejection; default 5
	// Sweep is how often the store is asked for claimable commands besides
	// when this processor submits or finishes one (commands accepted by
	// other replicas, expired leases), and how long a transient failure
	// waits before its retry; default 2s.
	Sweep time.Duration
	// Replica names this processor among those sharing the store: the
	// owner of its leases; default a random id.
	Replica string
	// Lease is how long a claimed command is this replica's without a
	// renewal (renewed every third of it while it runs): a replica that
	// dies mid-command has it resumed by another that much later; default
	// 15s.
	Lease time.Duration
	// Shared says other replicas may run on the store (cluster mode): an
	// inline command then asks the store, in its write, that no pending
	// command of its key exists; a single engine knows them all in memory.
	Shared bool
	// Retention is how long finished commands are kept (their status can
	// be polled, ballots show them); older ones are pruned, their counts
	// kept for the statistics. 0 keeps them forever.
	Retention time.Duration
	// PruneEvery is how often the pruning runs when Retention is set;
	// default 1h (and once at Start).
	PruneEvery time.Duration
	// PruneLease, if set, is the lease under which pruning runs: by one
	// replica at a time (nil: always here).
	PruneLease *lease.Lease
	Logger     *slog.Logger
	// Announcers, if set (shared mode), keeps this replica's announcer, so
	// that the acks of outcomes it recorded are published by another
	// replica if it dies before publishing them (announce.go).
	Announcers privicore.AnnouncerStore
	// AnnounceEvery is how often the announcer is renewed; default
	// DefaultAnnounceEvery.
	AnnounceEvery time.Duration
	// AnnounceLease, if set, is the lease under which a replica announces
	// what lapsed announcers may not have: one replica at a time (nil:
	// always here).
	AnnounceLease *lease.Lease
	// Gate, if set, is asked about every command that fires an event
	// (Event); without one no command is held.
	Gate Gate
}

// Processor runs commands: Submit records them (submit.go), a dispatcher
// claims them from the store, lease by lease, in order of their keys, and
// executes them (queue.go), finish ends each one (finish.go); Start and
// Stop are in sweep.go.
type Processor struct {
	store    privicore.Store
	pub      Publisher
	log      *slog.Logger
	opts     Options
	handlers map[string]steps
	events   map[string]func(*privicore.Command) string
	gate     Gate
	now      func() time.Time

	inputMu sync.Mutex
	inputs  map[string]any // in-memory inputs of Task commands, by id (never persisted; task.go)

	holdMu sync.Mutex
	held   map[string]*Hold // commands whose 202 has not left yet, by id (hold.go)

	outcomes outcomes // outcomes whose ack is not yet handed to the publisher (announce.go)

	mu      sync.Mutex
	keys    map[string]int    // ordering key → inline executions, and (single engine) pending commands (track)
	pending map[string]string // tracked pending command id → its key (single engine)
	running int               // claimed commands executing
	kick    chan struct{}     // wakes the dispatcher
	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
}

// New returns a Processor over store that publishes outcomes through pub.
func New(store privicore.Store, pub Publisher, opts Options) *Processor {
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Sweep <= 0 {
		opts.Sweep = 2 * time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = lease.DefaultTTL
	}
	if opts.Replica == "" {
		opts.Replica = "replica-" + NewID()
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AnnounceEvery <= 0 {
		opts.AnnounceEvery = DefaultAnnounceEvery
	}
	p := &Processor{store: store, pub: pub, log: opts.Logger, opts: opts, gate: opts.Gate, handlers: map[string]steps{}, events: map[string]func(*privicore.Command) string{}, inputs: map[string]any{}, held: map[string]*Hold{},
		now: func() time.Time { return time.Now().UTC() }, keys: map[string]int{}, pending: map[string]string{}, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	p.outcomes = outcomes{open: map[string]time.Time{}, active: opts.Announcers != nil}
	return p
}

// Handle registers the handler of a command type. It must be called before
// Start.
func (p *Processor) Handle(typ string, h Handler) {
	p.register(typ, steps{apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ any) (Result, error) {
		return h(ctx, q, c)
	}})
}

// HandleKeyed is Handle for a command type ordered by key (see Task.Key)
// instead of by profile. It must be called before Start.
func (p *Processor) HandleKeyed(typ string, key func(c *privicore.Command) string, h Handler) {
	p.register(typ, steps{key: key, apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ any) (Result, error) {
		return h(ctx, q, c)
	}})
}

// steps is a registered command type as the processor runs it: Handler
// and Task both come down to it.
type steps struct {
	key func(c *privicore.Command) string
	// prepare gets the command's in-memory input (Task) and whether this
	// process has it; nil when the type has no Prepare.
	prepare       func(ctx context.Context, c *privicore.Command, in any, has bool) (any, error)
	apply         func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (Result, error)
	compensate    func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error
	prepareInline bool
	// stage: Prepare runs before the gate's check of a gated command, and
	// its Out is recorded with the command (Task.StageBeforeGate);
	// unstage reads a recorded Out back.
	stage   bool
	unstage func(raw []byte) (any, error)
}

// compensateIn runs Compensate for what Prepare did (prepared), if both are there.
func (h steps) compensateIn(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error {
	if h.compensate == nil || prepared == nil {
		return nil
	}
	return h.compensate(ctx, q, c, prepared)
}

func (p *Processor) register(typ string, s steps) {
	if _, dup := p.handlers[typ]; dup {
		panic("command: duplicate handler " + typ)
	}
	p.handlers[typ] = s
}

// ByID is a Task.Key (or HandleKeyed key) for commands that need no ordering.
func ByID(c *privicore.Command) string { return c.ID }

// Event declares the policy event commands of typ fire (spec §10), as a
// function of the command ("" for none). Set before Start.
func (p *Processor) Event(typ string, event func(*privicore.Command) string) { p.events[typ] = event }

// Fires is an Event function for command types that always fire event.
func Fires(event string) func(*privicore.Command) string {
	return func(*privicore.Command) string { return event }
}

// gated returns the event c fires and whether the gate may hold c.
func (p *Processor) gated(ctx context.Context, c *privicore.Command) (string, bool) {
	event := p.events[c.Type]
	if p.gate == nil || event == nil {
		return "", false
	}
	ev := event(c)
	return ev, ev != "" && p.gate.Gated(ctx, c, ev)
}

// Resume ends the hold of a command (its gate decided): it is accepted
// again, after the commands of its key accepted so far, and whichever
// replica claims it first runs it, once. If the execution that is holding
// it has not recorded the hold yet, it leaves the command claimable.
func (p *Processor) Resume(ctx context.Context, id string) {
	if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.ResumeCommand(ctx, id) }); err != nil {
		p.log.Warn("resuming a held command failed", "command", id, "err", err)
		return
	}
	if !p.opts.Shared {
		if c, err := p.store.FindCommand(ctx, id); err == nil && c.Status == privicore.CommandPending {
			p.track(c.ID, c.Key)
		}
	}
	p.wake()
}

// Status returns command id as seen by callerProfileID: "" means the caller
// presented no token (a command id is an unguessable capability, so the
// read is by id alone); otherwise the read is scoped to the caller's
// profile, and another profile's command is ENOTFOUND.
func (p *Processor) Status(ctx context.Context, id, callerProfileID string) (*privicore.Command, error) {
	if callerProfileID == "" {
		return p.store.FindCommand(ctx, id)
	}
	return p.store.FindProfileCommand(ctx, callerProfileID, id)
}

type actorKey struct{}

// WithActor returns ctx carrying who acts (recorded on the commands
// submitted with it; ballots show it).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// NewID returns a fresh command id (UUIDv7).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
