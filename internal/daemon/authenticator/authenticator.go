// Package authenticator is the authenticator device: it connects to the
// bus with its bundle, receives ballots, asks its Decide function (a person
// at a terminal, or a fixed answer for automation), and sends each answer
// signed with the device key (see internal/protocol).
package authenticator

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// Decision is what Decide answers: vote yes, vote no, or stay silent.
type Decision int

// Decisions.
const (
	Silent Decision = iota
	Yes
	No
)

// Config configures an Authenticator.
type Config struct {
	Bundle *privicore.Bundle
	Key    *ecdh.PrivateKey // the device's own key (its public half is registered)
	// Decide is asked about each ballot once (one at a time).
	Decide func(ctx context.Context, b protocol.Ballot) Decision
	// Answered, if set, is told the engine's receipt of every answer sent.
	Answered func(b protocol.Ballot, vote string, r protocol.Receipt)
	Logger   *slog.Logger
}

// Authenticator is a running authenticator device.
type Authenticator struct {
	cfg       Config
	log       *slog.Logger
	enginePub *ecdh.PublicKey
	nc        *nats.Conn

	mu   sync.Mutex // one decision at a time; seen ballots
	seen map[string]bool
	ctx  context.Context
	stop context.CancelFunc
}

// Start connects and serves ballots until Close.
func Start(cfg Config) (*Authenticator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bundle == nil || cfg.Key == nil || cfg.Decide == nil {
		return nil, errors.New("authenticator: bundle, key and Decide are required")
	}
	pub, err := keys.ParsePublicKey(cfg.Bundle.EnginePublicKey)
	if err != nil {
		return nil, fmt.Errorf("the bundle's engine key: %w", err)
	}
	a := &Authenticator{cfg: cfg, log: cfg.Logger, enginePub: pub, seen: map[string]bool{}}
	a.ctx, a.stop = context.WithCancel(context.Background())
	root := cfg.Bundle.BusSubjectPrefix // the device's own subject root
	nc, err := bus.Dial(cfg.Bundle, "privicore-authenticator", a.log, func(nc *nats.Conn) { nc.Publish(protocol.From(root, protocol.OpHello), nil) })
	if err != nil {
		return nil, err
	}
	a.nc = nc
	if _, err := nc.Subscribe(protocol.To(root, protocol.OpBallot), func(m *nats.Msg) { go a.onBallot(m.Data) }); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Subscribe(protocol.To(root, protocol.OpPing), func(m *nats.Msg) { m.Respond(nil) }); err != nil {
		nc.Close()
		return nil, err
	}
	if nc.IsConnected() {
		nc.Publish(protocol.From(root, protocol.OpHello), nil)
		// The server has the subscriptions once the flush returns: a
		// ballot sent after Start has returned reaches the device.
		nc.FlushTimeout(5 * time.Second)
	}
	return a, nil
}

// Close disconnects.
func (a *Authenticator) Close() {
	a.stop()
	if a.nc != nil {
		a.nc.Close()
	}
}

func (a *Authenticator) onBallot(data []byte) {
	var b protocol.Ballot
	if err := json.Unmarshal(data, &b); err != nil || b.PoolID == "" || b.DeviceIdentifier != a.cfg.Bundle.DeviceIdentifier {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := fmt.Sprintf("%s/%d", b.PoolID, b.Attempt)
	if a.seen[key] {
		return // sent again after a reconnect
	}
	a.seen[key] = true
	if len(a.seen) > 10000 {
		a.seen = map[string]bool{key: true}
	}
	ctx, cancel := context.WithDeadline(a.ctx, b.ExpiresAt)
	defer cancel()
	vote := ""
	switch a.cfg.Decide(ctx, b) {
	case Yes:
		vote = "yes"
	case No:
		vote = "no"
	default:
		return
	}
	r, err := a.Answer(b, vote)
	if err != nil {
		a.log.Warn("answer not delivered", "pool", b.PoolID, "err", err)
		return
	}
	if a.cfg.Answered != nil {
		a.cfg.Answered(b, vote, r)
	}
}

// Answer sends a signed vote ("yes" or "no") on a ballot and returns the
// engine's receipt.
func (a *Authenticator) Answer(b protocol.Ballot, vote string) (protocol.Receipt, error) {
	ans := protocol.Answer{PoolID: b.PoolID, Attempt: b.Attempt, Vote: vote}
	if err := protocol.Sign(&ans, a.cfg.Bundle.DeviceIdentifier, a.cfg.Key, a.enginePub); err != nil {
		return protocol.Receipt{}, err
	}
	return a.Send(ans)
}

// Send delivers an answer as it is (tests send forged and replayed ones).
func (a *Authenticator) Send(ans protocol.Answer) (protocol.Receipt, error) {
	raw, _ := json.Marshal(ans)
	m, err := a.nc.Request(protocol.From(a.cfg.Bundle.BusSubjectPrefix, protocol.OpVote), raw, 5*time.Second)
	if err != nil {
		return protocol.Receipt{}, err
	}
	var r protocol.Receipt
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return protocol.Receipt{}, err
	}
	return r, nil
}
