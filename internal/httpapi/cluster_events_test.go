package httpapi_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/protocol"
)

// Every socket of a profile hears every event, whichever replica raised it
// and whichever replica the socket is joined to (issue #14 point 2): three
// replicas on one PostgreSQL and one NATS (enginetest.StartCluster).

// TestClusterAcksReachSocketsOnEveryReplica: the acks of commands
// submitted on A reach the profile's sockets joined on B and C (and A).
func TestClusterAcksReachSocketsOnEveryReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-acks")
	var socks []*socket
	for _, e := range c.Engines {
		socks = append(socks, join(t, e.WSURL, u.Token))
	}
	for range 3 {
		id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
		for i, s := range socks {
			if ack := s.awaitAck(id); ack["command_status"] != float64(2) {
				t.Fatalf("replica %d's socket: ack %v", i, ack)
			}
		}
	}
}

// TestClusterDataEventReachesAnotherReplica: the answer of a request-data
// submitted on A (X-DPT-CAB-REQUEST-ID) reaches the requester's socket on
// B, with the stored bytes.
func TestClusterDataEventReachesAnotherReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-data")
	a.storageDevice(u, "s1")
	wire, _ := ciphertext(t, 256)
	dtk := a.store(u, "cluster", wire)
	s := join(t, c.Engines[1].WSURL, u.Token)
	got, ev := a.retrieve(s, u.Token, dtk)
	if !bytes.Equal(got, wire) {
		t.Fatalf("the data event on B: %v", ev)
	}
}

// TestClusterPoolEventsReachAnotherReplica: a delete submitted on A held
// for a vote announces its pool (POOL-OPENED, POOL-RESOLVED) and its ack to
// the socket on B.
func TestClusterPoolEventsReachAnotherReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-pool")
	dtk := a.guardedToken(u)
	s := join(t, c.Engines[1].WSURL, u.Token)
	del := accepted(t, a.postJSON("/data-token/delete-data", u.Token, map[string]string{"token": dtk}))
	t.Cleanup(func() {
		if t.Failed() { // what the command's record says, and its lease (seen once under CI's load: approved, no ack)
			cmd, err := c.Engines[0].Store.FindCommand(context.Background(), del)
			var owner string
			var until int64
			c.Engines[0].Store.SQL().QueryRow(`SELECT lease_owner, lease_until FROM commands WHERE id = $1`, del).Scan(&owner, &until)
			t.Logf("the delete's record: %+v (%v); lease %q until %v; replicas %s, %s, %s", cmd, err, owner, time.Unix(0, until),
				c.Engines[0].ReplicaID(), c.Engines[1].ReplicaID(), c.Engines[2].ReplicaID())
		}
	})
	evs := a.events(u, s, isAck(del))
	opened := find(evs, map[string]any{"type": "POOL-OPENED", "commandId": del})
	resolved := find(evs, map[string]any{"type": "POOL-RESOLVED", "commandId": del, "state": "approved"})
	if opened < 0 || resolved < opened || evs[len(evs)-1]["command_status"] != float64(2) {
		t.Fatalf("the pool's events on B: %v", evs)
	}
}

// TestClusterEventWithNoSocketIsKeptForTheNextJoin: an event raised on A
// while no socket of the profile is joined anywhere is delivered on the
// next join, on B, and not again on a later join on C.
func TestClusterEventWithNoSocketIsKeptForTheNextJoin(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-kept")
	id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	a.succeed(id)
	sb := join(t, c.Engines[1].WSURL, u.Token)
	if ack := sb.awaitAck(id); ack["command_status"] != float64(2) {
		t.Fatalf("the kept ack on B: %v", ack)
	}
	sc := join(t, c.Engines[2].WSURL, u.Token)
	// A command after the joins: its ack reaches C; the kept one came before
	// it or not at all.
	marker := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	for _, ev := range sc.until(isAck(marker)) {
		if ev["id"] == id {
			t.Fatalf("the kept ack was delivered again, on C: %v", ev)
		}
	}
	// Once the sockets are gone, events are kept again: the next join, on
	// A, has the ack of a command run meanwhile.
	sb.conn.CloseNow()
	sc.conn.CloseNow()
	commandtest.Eventually(t, "the sockets on B and C are gone", func() bool {
		return c.Engines[1].Hub.Joined(u.ID) == 0 && c.Engines[2].Hub.Joined(u.ID) == 0
	})
	later := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	a.succeed(later)
	join(t, c.Engines[0].WSURL, u.Token).awaitAck(later)
}

// TestClusterOAuthSocketHearsOnlyItsOwn: an OAuth application's socket on
// B receives the acks of its own application's commands, submitted on A,
// and not those of the profile's other commands; an event only such a
// socket is joined for is kept for the profile's next socket (on C), and
// one another socket heard is not.
func TestClusterOAuthSocketHearsOnlyItsOwn(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-oauth")
	g := a.authorize(u, a.oauthApp(u, "data-token:write"), "n-1", "data-token:write")
	app := join(t, c.Engines[1].WSURL, g.AccessToken)

	other := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	a.succeed(other)
	own := join(t, c.Engines[2].WSURL, u.Token)
	own.awaitAck(other) // kept: the one socket joined may not hear it
	mine := accepted(t, a.postJSON("/data-token/reserve-token-space", g.AccessToken, map[string]any{"context": "app"}))
	for _, ev := range app.until(isAck(mine)) {
		if ev["id"] == other {
			t.Fatalf("the application's socket on B got the ack of the profile's own command: %v", ev)
		}
	}
	own.awaitAck(mine) // the profile's own token hears everything

	// An event the socket on C heard is not kept because the one on B may
	// not hear it: neither C's socket nor a later join (on A) gets it again.
	heard := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	own.awaitAck(heard)
	late := join(t, c.Engines[0].WSURL, u.Token)
	marker := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	for i, s := range []*socket{own, late} {
		for _, ev := range s.until(isAck(marker)) {
			if ev["id"] == heard {
				t.Fatalf("an event heard on C was kept and delivered again (socket %d): %v", i, ev)
			}
		}
	}
}

// TestClusterRevokeClosesSocketsOnEveryReplica: a revoke on A closes the
// token's sockets on B and C; the profile's other token's socket stays.
func TestClusterRevokeClosesSocketsOnEveryReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 3)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-revoke")
	doomed := a.login(u.Name, u.Password)
	sb := join(t, c.Engines[1].WSURL, doomed)
	sc := join(t, c.Engines[2].WSURL, doomed)
	keep := join(t, c.Engines[1].WSURL, u.Token)
	expect(t, a.postJSON("/profile/revoke-authorization-token", doomed, nil), 200)
	sb.closedWithin(10 * time.Second)
	sc.closedWithin(10 * time.Second)
	id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	keep.awaitAck(id)
}

// TestClusterEventKeptDuringAJoinIsDelivered: in a NATS cluster a new
// socket's subscription reaches the other nodes a moment after the join,
// and an event raised there meanwhile is kept with its notice heard by
// nobody. Kept so (published straight into the buffer, no notice), it
// still reaches the joined socket: the hub drains once more after a join.
func TestClusterEventKeptDuringAJoinIsDelivered(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("cluster-spread")
	s := join(t, c.Engines[1].WSURL, u.Token)
	nc, err := nats.Connect(strings.Replace(c.NATSURL, "nats://", "nats://privicore:engine-pw@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(protocol.DefaultPrefix + ".eventbuf." + u.ID)
	m.Header.Set(bus.HeaderEventType, "X-DPT-CAB-ID")
	m.Header.Set(bus.HeaderSource, "another-node")
	m.Data = []byte(`{"data":{"type":"X-DPT-CAB-ID","id":"kept-during-the-join","command_status":2,"body":"kept"}}`)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ack := s.awaitAck("kept-during-the-join"); ack["body"] != "kept" {
		t.Fatalf("the kept event: %v", ack)
	}
}
