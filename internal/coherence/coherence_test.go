package coherence_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// rig is one PostgreSQL database and one NATS server that replicas share.
type rig struct {
	t     *testing.T
	store *sqlstore.DB
	url   string
}

func newRig(t *testing.T) *rig {
	store, err := sqlstore.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := enginetest.NATSServer(t, &server.Options{})
	return &rig{t: t, store: store, url: srv.ClientURL()}
}

// replica starts the peers of replica id, closed when the test ends.
func (r *rig) replica(id string, opts coherence.Options) *coherence.Peers {
	r.t.Helper()
	nc, err := nats.Connect(r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	opts.Subject = "privicore-test.coherence"
	p := coherence.New(id, r.store, nc, opts)
	if err := p.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(p.Close)
	return p
}

// heard records the keys a replica's handler was called with.
type heard struct {
	mu   sync.Mutex
	keys []string
}

func (h *heard) handle(key string) { h.mu.Lock(); h.keys = append(h.keys, key); h.mu.Unlock() }
func (h *heard) has(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.keys, key)
}

var fast = coherence.Options{Renew: 100 * time.Millisecond, TTL: 1500 * time.Millisecond, AckWait: 500 * time.Millisecond, WarmUp: 300 * time.Millisecond}

// TestPublishReturnsOnceEveryMemberDroppedIt: a change published on one
// replica has run the handlers of this replica and of every other member
// when Publish returns.
func TestPublishReturnsOnceEveryMemberDroppedIt(t *testing.T) {
	r := newRig(t)
	var ha, hb, hc heard
	// Acknowledgements are given all the time a loaded machine may need:
	// the test is that every live member acknowledges, not how fast.
	patient := fast
	patient.AckWait = time.Minute
	a, b, c := r.replica("a", patient), r.replica("b", patient), r.replica("c", patient)
	a.Handle(coherence.Token, ha.handle)
	b.Handle(coherence.Token, hb.handle)
	c.Handle(coherence.Token, hc.handle)
	commandtest.EventuallyWithin(t, "every replica valid", 10*time.Second, func() bool { return a.Valid() && b.Valid() && c.Valid() })
	a.Publish(context.Background(), []coherence.Change{{Kind: coherence.Token, Key: "t1"}})
	for name, h := range map[string]*heard{"a": &ha, "b": &hb, "c": &hc} {
		if !h.has("t1") {
			t.Errorf("replica %s had not dropped t1 when Publish returned", name)
		}
	}
	members, err := r.store.Replicas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(members, []string{"a", "b", "c"}) {
		t.Errorf("members %v, want a, b and c: none was evicted", members)
	}
}

// TestSilentMemberIsEvictedAndRejoins: a member that does not acknowledge
// (its bus connection is gone) is evicted by the next Publish; when it
// comes back it finds itself evicted, drops everything it cached and
// joins again, trusting its caches only after the warm-up.
func TestSilentMemberIsEvictedAndRejoins(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// A ghost: a member row whose replica runs nowhere, there when a joins.
	if err := r.store.JoinReplica(ctx, "ghost", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a := r.replica("a", fast)
	a.Publish(ctx, []coherence.Change{{Kind: coherence.Profile, Key: "p1"}})
	members, err := r.store.Replicas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(members, "ghost") {
		t.Fatalf("members %v: the ghost, which acknowledged nothing, was not evicted", members)
	}

	// A live replica evicted (as by another's Publish it missed) rejoins
	// with its caches flushed, and waits out a (long) warm-up.
	slow := fast
	slow.WarmUp = time.Hour
	b := r.replica("b", slow)
	flushed := make(chan struct{}, 8)
	b.OnFlush(func() { flushed <- struct{}{} })
	if b.Valid() {
		t.Fatal("b trusts its caches before its warm-up")
	}
	if err := r.store.EvictReplicas(ctx, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("an evicted replica did not flush its caches")
	}
	commandtest.EventuallyWithin(t, "b rejoins", 10*time.Second, func() bool {
		members, _ := r.store.Replicas(ctx)
		return slices.Contains(members, "b")
	})
	if b.Valid() {
		t.Fatal("b trusts its caches right after rejoining")
	}
}

// TestClosedReplicaLeaves: a replica that stops leaves the membership, so
// that no change waits for it.
func TestClosedReplicaLeaves(t *testing.T) {
	r := newRig(t)
	r.replica("a", fast)
	b := r.replica("b", fast)
	b.Close()
	members, err := r.store.Replicas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(members, []string{"a"}) {
		t.Fatalf("members %v after b closed, want a", members)
	}
}

// TestLocalPeersApplyAtOnce: an engine alone on its database applies a
// change to its own caches, and they are always valid.
func TestLocalPeersApplyAtOnce(t *testing.T) {
	p := coherence.Local()
	var h heard
	flushes := 0
	p.Handle(coherence.Devices, h.handle)
	p.OnFlush(func() { flushes++ })
	epoch := p.Epoch()
	p.Publish(context.Background(), []coherence.Change{{Kind: coherence.Devices, Key: "p1"}, {}})
	if !h.has("p1") || flushes != 1 || p.Epoch() == epoch || !p.Valid() {
		t.Fatalf("heard %v, %d flushes, epoch %d→%d, valid %v", h.keys, flushes, epoch, p.Epoch(), p.Valid())
	}
}

// slowJoin is the store with its join write held back by delay, as a
// loaded writer queue holds it.
type slowJoin struct {
	privicore.ReplicaStore
	delay time.Duration
}

func (s slowJoin) JoinReplica(ctx context.Context, id string, until time.Time) error {
	time.Sleep(s.delay)
	return s.ReplicaStore.JoinReplica(ctx, id, until)
}

// TestWarmUpCountsFromTheJoinsCommit: a replica whose join write is slow
// (held back past the warm-up) does not trust its caches the moment it has
// joined, since the other members may not list it yet; it trusts them a
// warm-up after its join is in the database.
func TestWarmUpCountsFromTheJoinsCommit(t *testing.T) {
	r := newRig(t)
	nc, err := nats.Connect(r.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	opts := fast
	opts.Subject = "privicore-test.coherence"
	p := coherence.New("slow-joiner", slowJoin{ReplicaStore: r.store, delay: 2 * fast.WarmUp}, nc, opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Valid() {
		t.Fatal("a replica trusts its caches as soon as its slow join is in the database")
	}
	commandtest.Eventually(t, "the caches trusted a warm-up after the join", p.Valid)
}
