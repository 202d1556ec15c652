// Package command is the engine's asynchronous command model: a command is
// recorded durably before its 202, executed exactly once by a handler whose
// state change commits together with the command's final status, and its
// outcome is published on the profile's channel. Commands left pending by a
// crash are resumed on start.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/privicore/privicore"
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

// Steps is a command type that does I/O (devices, the bus) besides its
// state change. Prepare runs outside any transaction and may run again if
// the engine crashes before the command finishes; Apply commits the state
// change with the command's status; Compensate, if set, runs in the
// transaction that records a rejection that came after a successful
// Prepare (e.g. to schedule the removal of what Prepare wrote to devices).
type Steps struct {
	// Key names what the command must be ordered with: commands with the
	// same key run one at a time, in the order they were accepted. nil
	// orders by profile (the safe default); return the command's own id for
	// commands that need no ordering.
	Key        func(c *privicore.Command) string
	Prepare    func(ctx context.Context, c *privicore.Command) (any, error)
	Apply      func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) (Result, error)
	Compensate func(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error
	// PrepareInline lets a command with Prepare run inline too: Prepare in
	// the submitting call, then the command written once with its outcome
	// (one write instead of two); a rejection after Prepare is recorded
	// with Compensate's changes, as on the queued path. If the process dies
	// before the write, the caller got no 202 and the command never
	// existed: only for a Prepare whose effects outside the engine are
	// harmless then (a read from the devices; a write to them of data that
	// is unreadable without what the write records). Whatever Prepare hands
	// out must wait for the Result's After, which runs once the outcome is
	// durable.
	PrepareInline bool
}

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
	Workers     int           // concurrent executions; default 64
	QueueSize   int           // per-worker queue; default 1024
	MaxAttempts int           // transient failures before rejection; default 5
	Sweep       time.Duration // how often pending commands are re-read from the store; default 2s
	// Retention is how long finished commands are kept (their status can
	// be polled, ballots show them); older ones are pruned, their counts
	// kept for the statistics. 0 keeps them forever.
	Retention time.Duration
	// PruneEvery is how often the pruning runs when Retention is set;
	// default 1h (and once at Start).
	PruneEvery time.Duration
	Logger     *slog.Logger
	// Gate, if set, is asked about every command that fires an event
	// (Event); without one no command is held.
	Gate Gate
}

// Processor runs commands.
type Processor struct {
	store    privicore.Store
	pub      Publisher
	log      *slog.Logger
	opts     Options
	handlers map[string]Steps
	events   map[string]func(*privicore.Command) string
	gate     Gate
	now      func() time.Time

	attachMu sync.Mutex
	attached map[string]any // in-memory inputs of commands, by id (never persisted)

	holdMu sync.Mutex
	held   map[string]*Hold // commands whose 202 has not left yet, by id (hold.go)

	mu       sync.Mutex
	inflight map[string]bool
	keys     map[string]int            // ordering key → commands queued or running
	queues   []chan *privicore.Command // ordered commands, by key
	free     chan *privicore.Command   // unordered commands: any idle worker takes one
	stop     chan struct{}
	wg       sync.WaitGroup
	started  bool
}

// New returns a Processor over store that publishes outcomes through pub.
func New(store privicore.Store, pub Publisher, opts Options) *Processor {
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Sweep <= 0 {
		opts.Sweep = 2 * time.Second
	}
	if opts.PruneEvery <= 0 {
		opts.PruneEvery = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Processor{store: store, pub: pub, log: opts.Logger, opts: opts, gate: opts.Gate, handlers: map[string]Steps{}, events: map[string]func(*privicore.Command) string{}, attached: map[string]any{}, held: map[string]*Hold{},
		now: func() time.Time { return time.Now().UTC() }, inflight: map[string]bool{}, keys: map[string]int{}, stop: make(chan struct{})}
	for range opts.Workers {
		p.queues = append(p.queues, make(chan *privicore.Command, opts.QueueSize))
	}
	p.free = make(chan *privicore.Command, opts.QueueSize*opts.Workers)
	return p
}

// Handle registers the handler of a command type. It must be called before
// Start.
func (p *Processor) Handle(typ string, h Handler) {
	p.HandleSteps(typ, Steps{Apply: func(ctx context.Context, q privicore.Queries, c *privicore.Command, _ any) (Result, error) {
		return h(ctx, q, c)
	}})
}

// HandleSteps registers a command type that does I/O outside the
// transaction. It must be called before Start.
func (p *Processor) HandleSteps(typ string, s Steps) {
	if _, dup := p.handlers[typ]; dup {
		panic("command: duplicate handler " + typ)
	}
	p.handlers[typ] = s
}

// SubmitAttached is Submit with an in-memory attachment (e.g. a payload the
// engine must not write to its database) that Prepare reads with Attachment.
// The attachment does not survive a restart: Prepare must then reject.
func (p *Processor) SubmitAttached(ctx context.Context, profileID, typ string, payload, attachment any) (*privicore.Command, error) {
	id := NewID()
	p.attachMu.Lock()
	p.attached[id] = attachment
	p.attachMu.Unlock()
	c, err := p.SubmitWithID(ctx, id, profileID, typ, payload)
	if err != nil {
		p.detach(id)
	}
	return c, err
}

// Attachment returns the in-memory attachment of c, if this process has it.
func (p *Processor) Attachment(c *privicore.Command) (any, bool) {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	a, ok := p.attached[c.ID]
	return a, ok
}

func (p *Processor) detach(id string) {
	p.attachMu.Lock()
	delete(p.attached, id)
	p.attachMu.Unlock()
}

// ByID is a Steps.Key for commands that need no ordering.
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

// Resume queues a held command again (its gate decided).
func (p *Processor) Resume(ctx context.Context, id string) {
	c, err := p.store.FindCommand(ctx, id)
	if err != nil || c.Status != privicore.CommandPending {
		return
	}
	p.enqueue(c)
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

// Submit records a command of typ for profileID with payload (marshaled to
// JSON) and queues it. It returns once the command is durable: the caller
// may then answer 202.
func (p *Processor) Submit(ctx context.Context, profileID, typ string, payload any) (*privicore.Command, error) {
	return p.SubmitWithID(ctx, NewID(), profileID, typ, payload)
}

// SubmitWithID is Submit with a caller-chosen id.
func (p *Processor) SubmitWithID(ctx context.Context, id, profileID, typ string, payload any) (*privicore.Command, error) {
	if _, ok := p.handlers[typ]; !ok {
		return nil, fmt.Errorf("command: no handler for %q", typ)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	now := p.now()
	c := &privicore.Command{ID: id, ProfileID: profileID, Type: typ, Payload: raw, Status: privicore.CommandPending, CreatedAt: now, UpdatedAt: now,
		Actor: actorOf(ctx)}
	p.hold(ctx, c.ID)
	// Inline execution, unless a vote may hold the command (its pool needs
	// the command's record first).
	h := p.handlers[typ]
	if _, gated := p.gated(ctx, c); !gated && (h.Prepare == nil || h.PrepareInline) {
		if key := p.keyOf(c); p.claim(key) {
			done, err := p.inline(ctx, c, h)
			p.release(key)
			if done || err != nil {
				return c, err
			}
		}
	}
	if err := p.store.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, c) }); err != nil {
		return nil, err
	}
	p.enqueue(c)
	return c, nil
}

// inlinePrepareWithin bounds an inline Prepare (Steps.PrepareInline): the
// caller is waiting for its 202.
const inlinePrepareWithin = 2 * time.Second

// inline records and executes c in one transaction (one commit instead of
// two, when nothing it must be ordered after is pending). done is false
// when it failed for a transient reason and must take the queued path.
func (p *Processor) inline(ctx context.Context, c *privicore.Command, h Steps) (done bool, err error) {
	var res Result
	var herr error
	var prepared any
	if h.Prepare != nil {
		pctx, cancel := context.WithTimeout(ctx, inlinePrepareWithin)
		prepared, herr = h.Prepare(pctx, c)
		cancel()
		switch {
		case herr != nil && pctx.Err() != nil:
			// Slow (or the caller left): the queued path takes over, with
			// the command recorded first and Prepare's full time.
			c.Status, c.Body = privicore.CommandPending, ""
			return false, nil
		case herr != nil:
			return p.inlineFailed(ctx, c, Steps{}, nil, herr)
		}
	}
	err = p.store.Write(ctx, func(q privicore.Queries) error {
		if res, herr = h.Apply(ctx, q, c, prepared); herr != nil {
			return herr
		}
		if res.Body == "" {
			res.Body = BodySucceeded
		}
		done := *c
		done.Status, done.Body = privicore.CommandSucceeded, res.Body
		return q.CreateCommand(ctx, &done)
	})
	switch {
	case err == nil:
		c.Status, c.Body = privicore.CommandSucceeded, res.Body
		p.detach(c.ID)
		p.publish(c, privicore.CommandSucceeded, res.Body, res.Notify)
		if res.After != nil {
			res.After()
		}
		return true, nil
	case herr != nil:
		return p.inlineFailed(ctx, c, h, prepared, herr)
	}
	return true, err
}

// inlineFailed ends an inline command whose Prepare or Apply failed: a
// rejection is recorded as such, with h's Compensate for what Prepare did
// (prepared); anything else (transient) sends it down the queued path (done
// false), where Prepare runs again.
func (p *Processor) inlineFailed(ctx context.Context, c *privicore.Command, h Steps, prepared any, herr error) (done bool, err error) {
	if !isRejection(herr) {
		c.Status, c.Body = privicore.CommandPending, ""
		return false, nil
	}
	c.Status, c.Body = privicore.CommandRejected, reasonOf(herr)
	if err := p.store.Write(ctx, func(q privicore.Queries) error {
		if err := h.compensate(ctx, q, c, prepared); err != nil {
			return err
		}
		return q.CreateCommand(ctx, c)
	}); err != nil {
		return true, err
	}
	p.detach(c.ID)
	p.publish(c, privicore.CommandRejected, c.Body, "")
	return true, nil
}

// enqueue hands c to its worker unless it is already queued or running. A
// full queue leaves it to the sweeper: it is durable either way.
func (p *Processor) enqueue(c *privicore.Command) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.inflight[c.ID] {
		return
	}
	// Commands with one ordering key go to one worker, in order; commands
	// ordered after nothing go to whichever worker is idle.
	key := p.keyOf(c)
	q := p.free
	if key != c.ID {
		h := fnv.New32a()
		h.Write([]byte(key))
		q = p.queues[int(h.Sum32())%len(p.queues)]
	}
	select {
	case q <- c:
		p.inflight[c.ID] = true
		p.keys[key]++
	default:
	}
}

// keyOf is the ordering key of c.
func (p *Processor) keyOf(c *privicore.Command) string {
	key := c.ProfileID
	if h := p.handlers[c.Type]; h.Key != nil {
		key = h.Key(c)
	}
	if key == "" {
		key = c.ID
	}
	return key
}

// claim reserves key for an inline execution if no command with that key
// is queued or running.
func (p *Processor) claim(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.keys[key] > 0 {
		return false
	}
	p.keys[key]++
	return true
}

func (p *Processor) release(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys[key]--; p.keys[key] <= 0 {
		delete(p.keys, key)
	}
}

// Start resumes pending commands and starts the workers and the sweeper.
func (p *Processor) Start(ctx context.Context) error {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	for i := range p.queues {
		p.wg.Add(2)
		go p.worker(p.queues[i])
		go p.worker(p.free)
	}
	p.wg.Add(1)
	go p.sweeper()
	if p.opts.Retention > 0 {
		p.wg.Add(1)
		go p.pruner()
	}
	return p.sweep(ctx)
}

// Stop stops the workers after their current command. Queued commands stay
// pending in the store and are resumed by the next Start.
func (p *Processor) Stop() {
	p.mu.Lock()
	if !p.started {
		p.mu.Unlock()
		return
	}
	p.started = false
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
}

// sweep queues every pending command not already queued.
func (p *Processor) sweep(ctx context.Context) error {
	const page = 1000
	cmds, err := p.store.PendingCommands(ctx, page)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		p.enqueue(c)
	}
	return nil
}

func (p *Processor) sweeper() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.Sweep)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if err := p.sweep(context.Background()); err != nil {
				p.log.Warn("command sweep failed", "err", err)
			}
		}
	}
}

// pruneBatch is how many commands one write prunes: the writer is shared,
// so a large backlog goes in many short writes.
const pruneBatch = 1000

// pruner removes the commands older than the retention, at Start and then
// every PruneEvery.
func (p *Processor) pruner() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.PruneEvery)
	defer t.Stop()
	for {
		if n, err := p.Prune(context.Background()); err != nil {
			p.log.Warn("command pruning failed", "err", err)
		} else if n > 0 {
			p.log.Info("pruned finished commands", "count", n, "older_than", p.opts.Retention)
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// Prune deletes the finished commands older than the retention (none when
// it is 0), in batches, and returns how many. It stops early when the
// processor stops.
func (p *Processor) Prune(ctx context.Context) (int, error) {
	if p.opts.Retention <= 0 {
		return 0, nil
	}
	before := p.now().Add(-p.opts.Retention)
	total := 0
	for {
		var n int
		err := p.store.Write(ctx, func(q privicore.Queries) (err error) {
			n, err = q.PruneCommands(ctx, before, pruneBatch)
			return err
		})
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
		select {
		case <-p.stop:
			return total, nil
		default:
		}
	}
}

func (p *Processor) worker(q chan *privicore.Command) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case c := <-q:
			p.execute(c)
			key := p.keyOf(c)
			p.mu.Lock()
			delete(p.inflight, c.ID)
			p.mu.Unlock()
			p.release(key)
		}
	}
}

var errAlreadyFinished = errors.New("command already finished")

// execute runs c once: Prepare (outside), then Apply and the final status
// in one write; on rejection Apply's changes roll back and only the
// rejection (with Compensate's changes) is recorded.
func (p *Processor) execute(c *privicore.Command) {
	ctx := context.Background()
	h, known := p.handlers[c.Type]
	if !known {
		p.reject(ctx, c, Steps{}, nil, "command.unknown_type")
		return
	}
	if ev, gated := p.gated(ctx, c); gated {
		proceed, err := p.gate.Check(ctx, c, ev)
		switch {
		case err != nil && isRejection(err):
			p.reject(ctx, c, Steps{}, nil, reasonOf(err))
			return
		case err != nil:
			p.retry(ctx, c, err)
			return
		case !proceed:
			return // held: pending until the gate resumes it
		}
	}
	var prepared any
	if h.Prepare != nil {
		var err error
		prepared, err = h.Prepare(ctx, c)
		if err != nil {
			if isRejection(err) {
				p.reject(ctx, c, Steps{}, nil, reasonOf(err))
			} else {
				p.retry(ctx, c, err)
			}
			return
		}
	}
	var res Result
	var herr error
	err := p.store.Write(ctx, func(q privicore.Queries) error {
		res, herr = h.Apply(ctx, q, c, prepared)
		if herr != nil {
			return herr
		}
		if res.Body == "" {
			res.Body = BodySucceeded
		}
		// Only a pending command finishes: if another execution got there
		// first, everything Apply did here rolls back.
		err := q.FinishCommand(ctx, c.ID, privicore.CommandSucceeded, res.Body, p.now())
		if privicore.ErrorCode(err) == privicore.ECONFLICT {
			return errAlreadyFinished
		}
		return err
	})
	switch {
	case err == nil:
		p.detach(c.ID)
		p.publish(c, privicore.CommandSucceeded, res.Body, res.Notify)
		if res.After != nil {
			res.After()
		}
	case errors.Is(err, errAlreadyFinished):
		p.detach(c.ID)
	case herr != nil && isRejection(herr):
		p.reject(ctx, c, h, prepared, reasonOf(herr))
	default:
		p.retry(ctx, c, err)
	}
}

func isRejection(err error) bool {
	var e *privicore.Error
	return errors.As(err, &e) && e.Code != privicore.EUNAVAILABLE && e.Code != privicore.EINTERNAL
}

func reasonOf(err error) string {
	if r := privicore.ErrorReason(err); r != "" {
		return r
	}
	return "command.rejected"
}

// compensate runs h's Compensate for what Prepare did (prepared), if both are there.
func (h Steps) compensate(ctx context.Context, q privicore.Queries, c *privicore.Command, prepared any) error {
	if h.Compensate == nil || prepared == nil {
		return nil
	}
	return h.Compensate(ctx, q, c, prepared)
}

// reject records the rejection; if even that fails the command stays pending
// and the sweeper brings it back.
func (p *Processor) reject(ctx context.Context, c *privicore.Command, h Steps, prepared any, reason string) {
	err := p.store.Write(ctx, func(q privicore.Queries) error {
		if err := h.compensate(ctx, q, c, prepared); err != nil {
			return err
		}
		return q.FinishCommand(ctx, c.ID, privicore.CommandRejected, reason, p.now())
	})
	if err != nil {
		if privicore.ErrorCode(err) != privicore.ECONFLICT {
			p.log.Warn("recording a rejection failed", "command", c.ID, "err", err)
		}
		return
	}
	p.detach(c.ID)
	p.publish(c, privicore.CommandRejected, reason, "")
}

// retry counts a transient failure; past MaxAttempts the command is rejected.
func (p *Processor) retry(ctx context.Context, c *privicore.Command, cause error) {
	p.log.Warn("command failed, will retry", "command", c.ID, "type", c.Type, "attempt", c.Attempts+1, "err", cause)
	c.Attempts++
	if c.Attempts >= p.opts.MaxAttempts {
		p.reject(ctx, c, Steps{}, nil, ReasonFailed)
		return
	}
	_ = p.store.Write(ctx, func(q privicore.Queries) error { return q.MarkCommandAttempt(ctx, c.ID, p.now()) })
	// The sweeper re-queues it once this execution has left the in-flight set.
}

func (p *Processor) publish(c *privicore.Command, status privicore.CommandStatus, body, notify string) {
	if p.pub == nil {
		return
	}
	ev := Event{Type: EventCommand, ID: c.ID, CommandStatus: status, Body: body, Actor: c.Actor}
	p.Publish(c.ID, c.ProfileID, ev)
	if notify != "" && notify != c.ProfileID {
		p.Publish(c.ID, notify, ev)
	}
}

// Status returns command id as seen by callerProfileID: "" means the caller
// presented no token (a command id is an unguessable capability); otherwise
// another profile's command is ENOTFOUND.
func (p *Processor) Status(ctx context.Context, id, callerProfileID string) (*privicore.Command, error) {
	c, err := p.store.FindCommand(ctx, id)
	if err != nil {
		return nil, err
	}
	if callerProfileID != "" && c.ProfileID != callerProfileID {
		return nil, privicore.Errorf(privicore.ENOTFOUND, "command not found")
	}
	return c, nil
}

// Run records a command and applies it in the same transaction, for
// commands whose effect must be visible at once (e.g. a delete that must
// stop reads immediately). A rejection from apply is returned as the error,
// and nothing is recorded; on success the outcome is published as usual.
// When the gate may hold the command, it takes the queued path instead
// (typ must then have a handler doing what apply does).
func (p *Processor) Run(ctx context.Context, profileID, typ string, payload any, apply func(q privicore.Queries) (Result, error)) (*privicore.Command, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	now := p.now()
	c := &privicore.Command{ID: NewID(), ProfileID: profileID, Type: typ, Payload: raw, Status: privicore.CommandSucceeded, CreatedAt: now, UpdatedAt: now,
		Actor: actorOf(ctx)}
	if _, handled := p.handlers[typ]; handled {
		if _, gated := p.gated(ctx, c); gated {
			return p.SubmitWithID(ctx, c.ID, profileID, typ, payload)
		}
	}
	p.hold(ctx, c.ID)
	var res Result
	err = p.store.Write(ctx, func(q privicore.Queries) error {
		var err error
		if res, err = apply(q); err != nil {
			return err
		}
		if res.Body == "" {
			res.Body = BodySucceeded
		}
		c.Body = res.Body
		return q.CreateCommand(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	// Under a Hold (the HTTP layer's), published once the 202 has left.
	p.publish(c, privicore.CommandSucceeded, res.Body, res.Notify)
	if res.After != nil {
		res.After()
	}
	return c, nil
}
