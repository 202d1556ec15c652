package bus_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/commandtest"
)

// replicas starts a NATS server with JetStream (jetStream false: without)
// and n engine buses on it, each with its event relay, as replicas sharing
// one bus are.
func replicas(t *testing.T, n int, jetStream bool) []*bus.Events {
	t.Helper()
	srv := natsServer(t, jetStream)
	var out []*bus.Events
	for i := range n {
		b, err := bus.Start(bus.Config{NATSURL: srv.ClientURL()}, approved)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		ev, err := bus.NewEvents(b, bus.EventsConfig{Source: fmt.Sprintf("r%d", i), BufferTTL: time.Minute, BufferSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ev.Close)
		out = append(out, ev)
	}
	return out
}

// natsServer runs a NATS server of the replicas' own on loopback (with
// JetStream or without), stopped with the test.
func natsServer(t *testing.T, jetStream bool) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: jetStream, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(guard) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// inbox collects what a Listen hears.
type inbox struct {
	mu       sync.Mutex
	events   []bus.Event
	buffered int
}

func (in *inbox) deliver(ev bus.Event) {
	in.mu.Lock()
	in.events = append(in.events, ev)
	in.mu.Unlock()
}
func (in *inbox) notice() { in.mu.Lock(); in.buffered++; in.mu.Unlock() }

func (in *inbox) data() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, ev := range in.events {
		out = append(out, string(ev.Data))
	}
	return out
}

func (in *inbox) notices() int { in.mu.Lock(); defer in.mu.Unlock(); return in.buffered }

func listen(t *testing.T, e *bus.Events, profile, audience string) *inbox {
	t.Helper()
	in := &inbox{}
	stop, err := e.Listen(profile, audience, in.deliver, in.notice)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return in
}

func drained(t *testing.T, e *bus.Events, profile string, wants func(bus.Event) bool) []string {
	t.Helper()
	evs, err := e.Drain(profile, wants)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Data))
	}
	return out
}

func all(bus.Event) bool { return true }

// TestEventsReachListenersOfTheirAudience: an event reaches, in order and
// with its type and actor, the listeners of its profile and audience on
// every replica (and of all the profile's audiences), not those of another
// audience or profile; nothing is kept, and the "no responders" watch of
// every event ends.
func TestEventsReachListenersOfTheirAudience(t *testing.T) {
	rs := replicas(t, 3, true)
	app := bus.Audience("app", "a-1")
	onB := listen(t, rs[1], "p1", app)
	onC := listen(t, rs[2], "p1", bus.AllAudiences)
	otherAudience := listen(t, rs[1], "p1", bus.Audience("scope", "voting:read"))
	otherProfile := listen(t, rs[2], "p2", bus.AllAudiences)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("m%d", i))
		rs[0].Publish("p1", app, bus.Event{Type: "X-DPT-CAB-ID", Actor: "application a-1", Data: []byte(want[i])})
	}
	commandtest.Eventually(t, "B and C hear the 20 events", func() bool { return len(onB.data()) == 20 && len(onC.data()) == 20 })
	if got := strings.Join(onB.data(), ","); got != strings.Join(want, ",") || strings.Join(onC.data(), ",") != got {
		t.Fatalf("order: B %v, C %v", onB.data(), onC.data())
	}
	onB.mu.Lock()
	ev := onB.events[0]
	onB.mu.Unlock()
	if ev.Type != "X-DPT-CAB-ID" || ev.Actor != "application a-1" {
		t.Fatalf("the event's envelope on B: %+v", ev)
	}
	commandtest.Eventually(t, "the publisher stops watching for no responders", func() bool { return rs[0].Pending() == 0 })
	if len(otherAudience.data()) != 0 || len(otherProfile.data()) != 0 {
		t.Fatalf("heard by another audience %v or profile %v", otherAudience.data(), otherProfile.data())
	}
	if got := drained(t, rs[2], "p1", all); len(got) != 0 {
		t.Fatalf("events that were heard were kept: %v", got)
	}
}

// TestEventsNobodyHearsAreKeptAndTakenOnce: an event with no listener of
// its audience anywhere is kept, in order, and drained once: by the first
// replica that takes it, never again by another; one the drain does not
// want stays for a later one.
func TestEventsNobodyHearsAreKeptAndTakenOnce(t *testing.T) {
	rs := replicas(t, 3, true)
	listen(t, rs[1], "p1", bus.Audience("app", "other")) // another audience: does not hear them
	for i := range 5 {
		rs[0].Publish("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte(fmt.Sprintf("k%d", i))})
	}
	rs[0].Publish("p1", bus.Audience("scope", "voting:read"), bus.Event{Type: "POOL-OPENED", Data: []byte("pool")})
	commandtest.Eventually(t, "the events are kept", func() bool { return rs[0].Pending() == 0 })
	notPools := func(ev bus.Event) bool { return ev.Type != "POOL-OPENED" }
	if got := strings.Join(drained(t, rs[1], "p1", notPools), ","); got != "k0,k1,k2,k3,k4" {
		t.Fatalf("drained on B: %s", got)
	}
	if got := drained(t, rs[2], "p1", notPools); len(got) != 0 {
		t.Fatalf("drained again on C: %v", got)
	}
	if got := strings.Join(drained(t, rs[2], "p1", all), ","); got != "pool" {
		t.Fatalf("the event B's drain left: %s", got)
	}
	if got := drained(t, rs[0], "p2", all); len(got) != 0 {
		t.Fatalf("another profile's kept events: %v", got)
	}
}

// TestConcurrentDrainsTakeEachEventOnce: replicas draining one profile at
// once share its kept events, each taken by exactly one.
func TestConcurrentDrainsTakeEachEventOnce(t *testing.T) {
	rs := replicas(t, 3, true)
	for i := range 8 {
		rs[0].Publish("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte(fmt.Sprintf("k%d", i))})
	}
	commandtest.Eventually(t, "the events are kept", func() bool { return rs[0].Pending() == 0 })
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			for _, d := range drained(t, r, "p1", all) {
				mu.Lock()
				seen[d]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 8 {
		t.Fatalf("taken: %v", seen)
	}
	for d, n := range seen {
		if n != 1 {
			t.Fatalf("%s taken %d times", d, n)
		}
	}
}

// TestBufferTellsLateListeners: an event kept (Buffer) is announced to the
// listeners of its audience that subscribed meanwhile, so that they drain
// it: a join racing the keeping does not leave it behind.
func TestBufferTellsLateListeners(t *testing.T) {
	rs := replicas(t, 2, true)
	in := listen(t, rs[1], "p1", bus.AllAudiences)
	rs[0].Buffer("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte("late")})
	commandtest.Eventually(t, "B is told", func() bool { return in.notices() == 1 })
	if len(in.data()) != 0 {
		t.Fatalf("the notice came as an event: %v", in.data())
	}
	if got := strings.Join(drained(t, rs[1], "p1", all), ","); got != "late" {
		t.Fatalf("drained %s", got)
	}
}

// TestKeptEventsAreBounded: a profile keeps its last BufferSize events.
func TestKeptEventsAreBounded(t *testing.T) {
	rs := replicas(t, 1, true)
	for i := range 12 {
		rs[0].Publish("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte(fmt.Sprintf("k%d", i))})
	}
	commandtest.Eventually(t, "the events are kept", func() bool { return rs[0].Pending() == 0 })
	if got := strings.Join(drained(t, rs[0], "p1", all), ","); got != "k4,k5,k6,k7,k8,k9,k10,k11" {
		t.Fatalf("kept %s", got)
	}
}

// TestCloseTokenReachesTheOtherReplicas: CloseToken reaches every other
// replica's OnCloseToken, not the sender's own.
func TestCloseTokenReachesTheOtherReplicas(t *testing.T) {
	rs := replicas(t, 3, true)
	var mu sync.Mutex
	got := map[int][]string{}
	for i, r := range rs {
		stop, err := r.OnCloseToken(func(id string) { mu.Lock(); got[i] = append(got[i], id); mu.Unlock() })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	if err := rs[0].CloseToken("tok-1"); err != nil {
		t.Fatal(err)
	}
	commandtest.Eventually(t, "B and C close", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[1]) == 1 && len(got[2]) == 1
	})
	if err := rs[1].CloseToken("tok-2"); err != nil { // after tok-1 on every connection
		t.Fatal(err)
	}
	commandtest.Eventually(t, "A and C close tok-2", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[0]) == 1 && len(got[2]) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0][0] != "tok-2" || got[1][0] != "tok-1" || len(got[1]) != 1 {
		t.Fatalf("closings heard: %v", got)
	}
}

// TestEventsWithoutJetStream: a bus without JetStream still carries the
// live events; what nobody hears is dropped, not kept.
func TestEventsWithoutJetStream(t *testing.T) {
	rs := replicas(t, 2, false)
	in := listen(t, rs[1], "p1", bus.AllAudiences)
	rs[0].Publish("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte("live")})
	rs[0].Publish("p2", bus.Audience("own"), bus.Event{Type: "T", Data: []byte("unheard")})
	commandtest.Eventually(t, "B hears it", func() bool { return len(in.data()) == 1 })
	commandtest.Eventually(t, "the unheard one is dropped", func() bool { return rs[0].Pending() == 0 })
	if got := drained(t, rs[1], "p2", all); len(got) != 0 {
		t.Fatalf("kept without JetStream: %v", got)
	}
}

// TestAudienceTokens: any part makes one subject token, distinct parts
// distinct tokens.
func TestAudienceTokens(t *testing.T) {
	for _, c := range []struct{ parts []string }{{[]string{"app", "a.b"}}, {[]string{"app", "a b"}}, {[]string{"app", "*"}}, {[]string{"app", ">"}}, {[]string{"app", ""}}} {
		a := bus.Audience(c.parts...)
		if strings.Count(a, ".") != 1 || strings.ContainsAny(a, " *>") {
			t.Fatalf("Audience(%q) = %q", c.parts, a)
		}
	}
	if bus.Audience("app", "a.b") == bus.Audience("app", "a", "b") || bus.Audience("scope", "voting:read") != "scope.voting:read" {
		t.Fatal("audiences collide or are mangled")
	}
}

// TestFlushReturnsOnceEventsAreHeardOrKept: when Flush returns, every event
// published before it has reached a listener or been kept: a drain right
// after it has all the kept ones, with no waiting.
func TestFlushReturnsOnceEventsAreHeardOrKept(t *testing.T) {
	rs := replicas(t, 2, true)
	heard := listen(t, rs[1], "p1", bus.Audience("own"))
	for i := range 8 { // the buffer's size per profile
		rs[0].Publish("p1", bus.Audience("own"), bus.Event{Type: "T", Data: []byte(fmt.Sprintf("h%d", i))})
		rs[0].Publish("p2", bus.Audience("own"), bus.Event{Type: "T", Data: []byte(fmt.Sprintf("k%d", i))})
	}
	if err := rs[0].Flush(guard); err != nil {
		t.Fatal(err)
	}
	if n := rs[0].Pending(); n != 0 {
		t.Fatalf("%d events still awaiting their answer when Flush returned", n)
	}
	if got := drained(t, rs[1], "p2", all); len(got) != 8 {
		t.Fatalf("kept when Flush returned: %d of 8 (%v)", len(got), got)
	}
	commandtest.Eventually(t, "the heard events delivered", func() bool { return len(heard.data()) == 8 })
	if err := rs[0].Flush(guard); err != nil { // nothing published since: at once
		t.Fatal(err)
	}
}
