package bus

// The event buffer: what no socket anywhere could hear is kept in a
// JetStream memory stream for the channel buffer time, and the next join on
// any replica takes it, once.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventBufferReplicas is how many nodes of a NATS cluster hold the event
// buffer (a single server holds it alone).
const eventBufferReplicas = 3

// EventBufferBytes bounds the memory of the event buffer stream.
const EventBufferBytes = 32 << 20

// jsTimeout bounds one JetStream call (buffering, draining).
const jsTimeout = 5 * time.Second

// jsStartWithin bounds how long NewEvents waits for the bus's JetStream
// to answer (a cluster electing its leader).
const jsStartWithin = 60 * time.Second

// noJetStream reports whether err says the bus has no JetStream at all.
func noJetStream(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders) // no JetStream API on the server
}

// ensureStream creates the buffer stream, or opens the one another
// replica created.
func (e *Events) ensureStream(cfg EventsConfig) (jetstream.Stream, error) {
	js := e.js
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	name := strings.ToUpper(token(e.prefix)) + "_EVENTS"
	st, err := js.Stream(ctx, name)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	sc := jetstream.StreamConfig{Name: name, Subjects: []string{e.prefix + ".eventbuf.*"},
		Storage: jetstream.MemoryStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxAge: cfg.BufferTTL, MaxMsgsPerSubject: int64(cfg.BufferSize), MaxBytes: EventBufferBytes,
		Replicas: eventBufferReplicas} // kept on three nodes of a cluster: losing one loses no event
	st, err = js.CreateStream(ctx, sc)
	if tooFewServers(err) {
		sc.Replicas = 1 // a single server, or a cluster of fewer nodes
		st, err = js.CreateStream(ctx, sc)
	}
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another replica was first
		return js.Stream(ctx, name)
	}
	return st, err
}

// JetStream's answers to a stream that asks for more replicas than there
// are servers to hold them (nats-server's error codes).
const (
	jsReplicasNotSupported = 10074 // replicas > 1 not supported in non-clustered mode
	jsNoSuitablePeers      = 10005 // no suitable peers for placement
	jsInsufficientRoom     = 10023 // insufficient resources
)

// tooFewServers reports whether err refused a stream's replica count for
// want of servers (not a passing failure: a cluster electing its leader
// fails otherwise, and is retried with the replicas asked for).
func tooFewServers(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case jsReplicasNotSupported, jsNoSuitablePeers, jsInsufficientRoom:
		return true
	}
	return false
}

// Buffer keeps ev for the next join on any replica (Drain), and tells the
// replicas that subscribed to its audience meanwhile (Listen's buffered)
// to drain it. The channel proxy calls it for an event that reached its
// subscription but none of its sockets (one that left in between).
func (e *Events) Buffer(profileID, audience string, ev Event) {
	if e.stream == nil {
		e.log.Debug("event dropped: no JetStream to keep it", "profile", profileID, "type", ev.Type)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, e.message(e.bufferSubject(profileID), ev)); err != nil {
		e.log.Warn("event not kept", "profile", profileID, "type", ev.Type, "err", err)
		return
	}
	notice := nats.NewMsg(e.liveSubject(profileID, audience))
	notice.Header.Set(headerBuffered, "1")
	notice.Header.Set(HeaderSource, e.source)
	_ = e.nc.PublishMsg(notice)
}

// Drain takes the events kept for profileID that wants accepts, in the
// order they were kept. Each is taken once, cluster-wide: whoever deletes
// it from the stream has it; the others stay for a later Drain.
func (e *Events) Drain(profileID string, wants func(Event) bool) ([]Event, error) {
	if e.stream == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	subject := e.bufferSubject(profileID)
	var out []Event
	for seq := uint64(1); ; {
		m, err := e.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		seq = m.Sequence + 1
		ev := Event{Type: m.Header.Get(HeaderEventType), Actor: m.Header.Get(HeaderEventActor), Data: m.Data}
		if !wants(ev) {
			continue
		}
		if err := e.stream.DeleteMsg(ctx, m.Sequence); err != nil {
			continue // taken by another replica (or expired)
		}
		out = append(out, ev)
	}
}
