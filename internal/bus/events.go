package bus

// Socket events between replicas (shared mode): every replica's channel
// proxy (internal/wsproxy) hears the events of the profiles it has sockets
// for, whichever replica raised them; what no socket anywhere may hear is
// kept in JetStream for the next join on any replica.

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of an event on the bus: the routing facts the channel proxy
// filters on (the channel message itself is the body), and who sent it.
const (
	HeaderEventType  = "Privicore-Event-Type"
	HeaderEventActor = "Privicore-Event-Actor"
	HeaderSource     = "Privicore-Source"
	headerBuffered   = "Privicore-Buffered" // a notice: events were kept for the profile (no body)
)

// markEvery is how often a marker prunes the events published as requests
// whose "no responders" answer can no longer come (see Events.mark).
const markEvery = 100 * time.Millisecond

// AllAudiences is the audience that hears every event of a profile (its
// own tokens' sockets).
const AllAudiences = ">"

// Event is one socket event on the bus.
type Event struct {
	Type  string // the event's data.type
	Actor string // command acks: who submitted the command
	Data  []byte // the channel message
}

// EventsConfig configures Events.
type EventsConfig struct {
	Source     string        // this replica's id (engine.Config.ReplicaID)
	BufferTTL  time.Duration // how long an event no socket heard is kept; required
	BufferSize int           // events kept per profile (oldest dropped); required
	Logger     *slog.Logger
}

// Events carries socket events and socket closings between the replicas'
// channel proxies over core NATS, one subject per profile and audience:
//
//	<prefix>.events.<profile>.<audience>   the live events (Publish, Listen)
//	<prefix>.eventbuf.<profile>            the kept ones (JetStream stream <PREFIX>_EVENTS)
//	<prefix>.sockets.close                 "close the sockets of this token" (CloseToken)
//
// An event is published as a request: only replicas with a socket that may
// hear it subscribe to its subject, so NATS answers "no responders" at
// once when there is none anywhere; the event is then kept in the stream,
// and a notice on its subject tells a replica that subscribed meanwhile to
// drain it (Drain, claimed by deleting it: once, whichever replica).
type Events struct {
	nc     *nats.Conn
	prefix string
	source string
	log    *slog.Logger
	js     jetstream.JetStream
	stream jetstream.Stream // nil: the bus has no JetStream, nothing is kept
	inbox  string
	sub    *nats.Subscription

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]pendingEvent // published, "no responders" possible still
	flushes []flushWait             // Flush calls waiting for their marker
	stop    chan struct{}
	wg      sync.WaitGroup
}

// flushWait is a Flush waiting for the marker of the events up to seq.
type flushWait struct {
	seq  uint64
	done chan struct{}
}

type pendingEvent struct {
	profileID, audience string
	ev                  Event
}

// NewEvents starts the event relay on b's connection. It creates the
// buffer stream if it is missing; a bus without JetStream keeps nothing
// (logged). Close stops it.
func NewEvents(b *Bus, cfg EventsConfig) (*Events, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Events{nc: b.nc, prefix: b.cfg.Prefix, source: cfg.Source, log: log, inbox: nats.NewInbox(),
		pending: map[uint64]pendingEvent{}, stop: make(chan struct{})}
	js, err := jetstream.New(e.nc)
	if err != nil {
		return nil, fmt.Errorf("bus: JetStream: %w", err)
	}
	e.js = js
	var st jetstream.Stream
	// A NATS cluster that has just formed answers JetStream calls only once
	// it has elected its JetStream leader: retry for a while.
	for deadline := time.Now().Add(jsStartWithin); ; time.Sleep(250 * time.Millisecond) {
		st, err = e.ensureStream(cfg)
		if err == nil || noJetStream(err) || time.Now().After(deadline) {
			break
		}
		log.Info("the bus's JetStream is not ready yet; retrying", "err", err)
	}
	switch {
	case noJetStream(err):
		log.Warn("the bus has no JetStream: events for a profile with no socket joined on any replica are dropped")
	case err != nil:
		return nil, fmt.Errorf("bus: event buffer: %w", err)
	}
	e.stream = st
	if e.sub, err = e.nc.Subscribe(e.inbox+".*", e.answer); err != nil {
		return nil, fmt.Errorf("bus: event answers: %w", err)
	}
	e.wg.Add(1)
	go e.marker()
	return e, nil
}

// Close stops the relay (the subscriptions Listen and OnCloseToken made
// are their callers' to stop).
func (e *Events) Close() {
	close(e.stop)
	e.wg.Wait()
	_ = e.sub.Unsubscribe()
}

// token makes s one subject token: itself when it is made of letters,
// digits, '-', '_' and ':' only (ids, scopes), else "~" and its hex.
func token(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == ':') {
			return "~" + hex.EncodeToString([]byte(s))
		}
	}
	if s == "" {
		return "~"
	}
	return s
}

// Audience is the audience of an event (or of a socket: who may hear it)
// made of parts, e.g. Audience("scope", "voting:read"). Each part may be
// any string.
func Audience(parts ...string) string {
	t := make([]string, len(parts))
	for i, p := range parts {
		t[i] = token(p)
	}
	return strings.Join(t, ".")
}

func (e *Events) liveSubject(profileID, audience string) string {
	return e.prefix + ".events." + token(profileID) + "." + audience
}

func (e *Events) bufferSubject(profileID string) string {
	return e.prefix + ".eventbuf." + token(profileID)
}

func (e *Events) message(subject string, ev Event) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(HeaderEventType, ev.Type)
	if ev.Actor != "" {
		m.Header.Set(HeaderEventActor, ev.Actor)
	}
	m.Header.Set(HeaderSource, e.source)
	m.Data = ev.Data
	return m
}

func decode(m *nats.Msg) Event {
	return Event{Type: m.Header.Get(HeaderEventType), Actor: m.Header.Get(HeaderEventActor), Data: m.Data}
}

// Publish sends ev to the sockets of profileID that audience reaches, on
// every replica; with none anywhere it keeps ev for the next join (Drain).
// It does not wait for either.
func (e *Events) Publish(profileID, audience string, ev Event) {
	e.mu.Lock()
	e.seq++
	seq := e.seq
	e.pending[seq] = pendingEvent{profileID: profileID, audience: audience, ev: ev}
	e.mu.Unlock()
	m := e.message(e.liveSubject(profileID, audience), ev)
	m.Reply = e.inbox + "." + strconv.FormatUint(seq, 10)
	if err := e.nc.PublishMsg(m); err != nil {
		e.mu.Lock()
		delete(e.pending, seq)
		e.mu.Unlock()
		e.log.Warn("event not published", "profile", profileID, "type", ev.Type, "err", err)
	}
}

// answer handles what comes back on the inbox: "no responders" for an
// event nobody heard (kept), or a marker (see mark).
func (e *Events) answer(m *nats.Msg) {
	last := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if last == "m" {
		upTo, _ := strconv.ParseUint(string(m.Data), 10, 64)
		e.mu.Lock()
		for seq := range e.pending {
			if seq <= upTo {
				delete(e.pending, seq)
			}
		}
		waiting := e.flushes[:0]
		for _, f := range e.flushes {
			if f.seq <= upTo {
				close(f.done)
			} else {
				waiting = append(waiting, f)
			}
		}
		e.flushes = waiting
		e.mu.Unlock()
		return
	}
	if len(m.Data) != 0 || m.Header.Get("Status") != "503" {
		return
	}
	seq, _ := strconv.ParseUint(last, 10, 64)
	e.mu.Lock()
	p, ok := e.pending[seq]
	delete(e.pending, seq)
	e.mu.Unlock()
	if ok {
		e.Buffer(p.profileID, p.audience, p.ev)
	}
}

// marker publishes, while events wait for a possible "no responders", a
// marker to the inbox: the server answers a request with no responders
// as it handles it, so when the marker comes back every answer to the
// requests before it has come, and they are forgotten.
func (e *Events) marker() {
	defer e.wg.Done()
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if e.nc.IsClosed() { // the bus closed under it (an engine that failed to start)
				return
			}
			e.mu.Lock()
			n, seq := len(e.pending), e.seq
			e.mu.Unlock()
			if n > 0 {
				_ = e.mark(seq)
			}
		}
	}
}

// mark sends a marker for the events published up to upTo to the inbox:
// when it comes back (answer), every answer to them has come.
func (e *Events) mark(upTo uint64) error {
	return e.nc.Publish(e.inbox+".m", []byte(strconv.FormatUint(upTo, 10)))
}

// Flush returns once every event Publish was given before it has reached
// the subscriptions of its subject or, with none, been kept (Buffer): a
// marker sent after them has come back, so their answers have come and
// been handled. It fails if that takes longer than timeout.
func (e *Events) Flush(timeout time.Duration) error {
	e.mu.Lock()
	f := flushWait{seq: e.seq, done: make(chan struct{})}
	e.flushes = append(e.flushes, f)
	e.mu.Unlock()
	if err := e.mark(f.seq); err != nil {
		e.dropFlush(f)
		return fmt.Errorf("bus: flushing events: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return nil
	case <-t.C:
		e.dropFlush(f)
		return fmt.Errorf("bus: flushing events: no answer within %v", timeout)
	}
}

func (e *Events) dropFlush(f flushWait) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, w := range e.flushes {
		if w.done == f.done {
			e.flushes = append(e.flushes[:i], e.flushes[i+1:]...)
			return
		}
	}
}

// Pending is how many published events may still get a "no responders".
func (e *Events) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

// Listen subscribes to profileID's events that audience reaches
// (AllAudiences: every one): deliver gets each, buffered is called when
// events were kept for the profile meanwhile (call Drain). The
// subscription is in place at the server when Listen returns; so is its
// end when stop returns.
func (e *Events) Listen(profileID, audience string, deliver func(Event), buffered func()) (stop func(), err error) {
	sub, err := e.nc.Subscribe(e.liveSubject(profileID, audience), func(m *nats.Msg) {
		if m.Header.Get(headerBuffered) != "" {
			buffered()
			return
		}
		deliver(decode(m))
	})
	if err != nil {
		return nil, err
	}
	if err := e.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return func() {
		_ = sub.Unsubscribe()
		_ = e.nc.Flush()
	}, nil
}
