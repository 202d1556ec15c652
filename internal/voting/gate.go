package voting

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

// Gate decides which commands wait for a vote: it is the command
// processor's command.Gate. It is made first (NewGate), because the
// processor takes it when it is constructed and the Service takes the
// processor; New then gives the gate the service that opens the pools.
//
// An ad-hoc vote is always gated; another command firing an event is when
// its profile may have an active policy: when the profile is in the
// guarded set. For an engine that owns its store (NewGate) that set is
// always current. For replicas sharing the store (NewSharedGate) it is
// current while the peers are Valid and the set was loaded since their
// last flush: an activation on any replica adds its profile here before
// it is acknowledged (the store notes it, coherence.Policies); otherwise
// the store says whether a policy covers the event. Check lets the
// command's pool decide, and opens one if a policy still covers it.
type Gate struct {
	guarded guarded
	// policies, for replicas sharing the store, is read by Gated while the
	// guarded set cannot be trusted (nil: the guarded set always answers).
	policies privicore.PolicyStore
	peers    *coherence.Peers
	// loaded is the peers' Epoch()+1 as of the start of the last load of
	// the guarded set (0: never loaded).
	loaded atomic.Uint64
	svc    *Service // the pools, given by New
}

// NewGate returns a gate for an engine that owns its store: it guards no
// profile yet (Service.Start loads the profiles with active policies; an
// activation adds its profile before it commits).
func NewGate() *Gate {
	return &Gate{guarded: guarded{m: map[string]time.Time{}}}
}

// NewSharedGate returns a gate for replicas sharing the store, which hears
// of every replica's policy changes through peers; while it cannot trust
// what it heard, each command firing an event reads the profile's
// policies from policies (one indexed read).
func NewSharedGate(policies privicore.PolicyStore, peers *coherence.Peers) *Gate {
	g := &Gate{guarded: guarded{m: map[string]time.Time{}}, policies: policies, peers: peers}
	peers.Handle(coherence.Policies, g.guarded.add)
	return g
}

// current reports whether the guarded set answers for every profile.
func (g *Gate) current() bool {
	if g.policies == nil {
		return true
	}
	return g.peers.Valid() && g.loaded.Load() == g.peers.Epoch()+1
}

// loadedSet records a load of the guarded set that began at the peers'
// epoch: the set is trusted until their next flush.
func (g *Gate) loadedSet(epoch uint64) { g.loaded.Store(epoch + 1) }

// Gated implements command.Gate: an ad-hoc vote always; another event when
// the profile may have an active policy covering it (Check reads them).
func (g *Gate) Gated(ctx context.Context, c *privicore.Command, event string) bool {
	if event == EventVote {
		return true
	}
	if !g.current() {
		return g.covered(ctx, c.ProfileID, event)
	}
	return g.guarded.has(c.ProfileID)
}

// covered reports whether one of the profile's active policies in the
// store covers event; when the store cannot say, true (Check then reads
// again, and a failure there is a retry, never an ungated run).
func (g *Gate) covered(ctx context.Context, profileID, event string) bool {
	list, err := g.policies.ListPolicies(ctx, profileID)
	if err != nil {
		return true
	}
	for _, p := range list {
		if p.Active && slices.Contains(p.Events, event) {
			return true
		}
	}
	return false
}

// Check implements command.Gate: the command's pool decides (wait while it
// is open, run once approved, else the rejection voting.<state>); without
// one, one is opened (and the command held) if a policy still covers it.
func (g *Gate) Check(ctx context.Context, c *privicore.Command, event string) (bool, error) {
	if g.svc == nil {
		return false, errNoService
	}
	return g.svc.decide(ctx, c, event)
}

// errNoService is a gate asked before New gave it its service: a transient
// failure (the processor retries), not a decision.
var errNoService = errors.New("voting: the gate has no service yet")

// decide is Gate.Check.
func (s *Service) decide(ctx context.Context, c *privicore.Command, event string) (bool, error) {
	pl, err := s.store.FindPoolByCommand(ctx, c.ProfileID, c.ID)
	if err == nil {
		return verdict(pl)
	} else if privicore.ErrorCode(err) != privicore.ENOTFOUND {
		return false, err
	}
	spec := poolSpec{event: event}
	if event == EventVote {
		if spec, err = voteSpec(c); err != nil {
			return false, err
		}
	} else {
		pol, err := s.policyFor(ctx, c.ProfileID, event)
		if err != nil {
			return false, err
		}
		if pol == nil {
			return true, nil // no policy covers it any more
		}
		spec.configuration, spec.title = pol.ConfigurationID, pol.Name
		spec.question, _ = pol.Configuration[ParamBallotMessage].(string)
		spec.detail = describe(c)
	}
	if pl, err = s.open(ctx, c, spec); err != nil {
		return false, err
	}
	return verdict(pl)
}

// verdict is what a pool says about its held command: wait (open), run
// (approved), or the rejection voting.<state>.
func verdict(pl *privicore.Pool) (proceed bool, err error) {
	switch pl.State {
	case privicore.PoolOpen:
		return false, nil
	case privicore.PoolApproved:
		return true, nil
	}
	return false, privicore.Reject("voting."+pl.State, "the vote ended %s", pl.State)
}

// policyFor returns the active policy of the profile covering event (the
// oldest, if several do), or nil.
func (s *Service) policyFor(ctx context.Context, profileID, event string) (*privicore.Policy, error) {
	active := true
	list, err := s.Policies(ctx, profileID, &active)
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		if slices.Contains(p.Events, event) {
			return p, nil
		}
	}
	return nil, nil
}

// guarded is the set of profiles that may have an active policy: every
// command firing an event asks it, and only those of a guarded profile
// read the policies (policyFor, uncached, so that a policy change applies
// to the very next command). Activation adds its profile inside its
// transaction, before the commit; the set is reloaded from the database
// every second (which also drops profiles whose policies went inactive),
// keeping profiles added in the last few seconds so that a reload that
// read the database just before an activation committed cannot lose it.
type guarded struct {
	mu sync.Mutex
	m  map[string]time.Time // profile → when it was added by an activation (zero: from the database)
}

const guardKeep = 5 * time.Second

func (g *guarded) has(profileID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.m[profileID]
	return ok
}

func (g *guarded) add(profileID string) {
	g.mu.Lock()
	g.m[profileID] = time.Now()
	g.mu.Unlock()
}

// reload replaces the set with ids (the database's), plus recent
// additions.
func (g *guarded) reload(ids []string) {
	m := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		m[id] = time.Time{}
	}
	g.mu.Lock()
	for id, at := range g.m {
		if !at.IsZero() && time.Since(at) < guardKeep {
			m[id] = at
		}
	}
	g.m = m
	g.mu.Unlock()
}

// reloadGuarded reloads the gate's guarded set from the database.
func (s *Service) reloadGuarded(ctx context.Context) error {
	epoch := s.gate.peers.Epoch() // before the read: a flush meanwhile leaves the set untrusted
	ids, err := s.store.ActivePolicyProfiles(ctx)
	if err != nil {
		return err
	}
	s.gate.guarded.reload(ids)
	s.gate.loadedSet(epoch)
	return nil
}
