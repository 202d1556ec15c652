package httpapi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/enginetest"
)

// Acks outlive the replica that recorded their outcomes (command/announce.go):
// one killed between recording an outcome and publishing its ack has the
// ack published by another.

// announcerRecorded reports whether replica's announcer is recorded (it is
// listed as lapsed at any time far enough ahead).
func announcerRecorded(t *testing.T, store privicore.AnnouncerStore, replica string) bool {
	t.Helper()
	all, err := store.LapsedAnnouncers(context.Background(), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(all, func(a privicore.Announcer) bool { return a.Replica == replica })
}

// TestClusterAnnouncesTheAcksOfADeadReplica: a replica that died (its
// announcer lapsed) after recording two outcomes, one before its announcer's
// Through and one after, has the ack of the second published by a live
// replica, to the profile's socket, and not the first (it had announced it);
// the lapsed announcer is then removed.
func TestClusterAnnouncesTheAcksOfADeadReplica(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("announce")
	s := join(t, c.Engines[1].WSURL, u.Token)
	store := c.Engines[0].Store
	ctx := context.Background()
	now := time.Now().UTC()
	finished := func(at time.Time, status privicore.CommandStatus, body string) *privicore.Command {
		cmd := &privicore.Command{ID: command.NewID(), ProfileID: u.ID, Type: "profile.noop", Payload: []byte(`{}`), Status: status, Body: body,
			CreatedAt: at, UpdatedAt: at, Key: u.ID, Announcer: "dead-replica"}
		if err := store.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, cmd) }); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	announced := finished(now.Add(-3*time.Second), privicore.CommandSucceeded, "announced before it died")
	unannounced := finished(now, privicore.CommandRejected, "some.reason")
	if err := store.KeepAnnouncer(ctx, privicore.Announcer{Replica: "dead-replica", Through: now.Add(-time.Second), Until: now.Add(-time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	evs := s.until(isAck(unannounced.ID))
	if ack := evs[len(evs)-1]; ack["command_status"] != float64(3) || ack["body"] != "some.reason" {
		t.Fatalf("the dead replica's unannounced ack: %v", ack)
	}
	for _, ev := range evs {
		if ev["id"] == announced.ID {
			t.Fatalf("an ack the dead replica had announced was published again: %v", ev)
		}
	}
	commandtest.Eventually(t, "the lapsed announcer removed", func() bool { return !announcerRecorded(t, store, "dead-replica") })
}

// TestClusterReplicaAnnouncesThroughItsOutcomes: an outcome a replica
// records names it as its announcer, and the replica's announcer moves past
// the outcome once its ack is out; a replica that stops removes its
// announcer (it announced everything).
func TestClusterReplicaAnnouncesThroughItsOutcomes(t *testing.T) {
	t.Parallel() // a database and a bus of its own; it mostly waits: let it overlap the others
	c := enginetest.StartCluster(t, 2)
	a := newAPI(t, c.Engines[0])
	u := a.activeUser("announcer")
	id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	a.succeed(id)
	store, replica := c.Engines[0].Store, c.Engines[0].ReplicaID()
	cmd, err := store.FindCommand(context.Background(), id)
	if err != nil || cmd.Announcer != replica {
		t.Fatalf("the outcome's announcer: %+v (%v), want %s", cmd, err, replica)
	}
	commandtest.Eventually(t, "the replica's announcer past the outcome", func() bool {
		all, err := store.LapsedAnnouncers(context.Background(), time.Now().Add(24*time.Hour))
		return err == nil && slices.ContainsFunc(all, func(a privicore.Announcer) bool { return a.Replica == replica && a.Through.After(cmd.UpdatedAt) })
	})
	c.Engines[0].Stop()
	if announcerRecorded(t, c.Engines[1].Store, replica) {
		t.Fatal("a replica that stopped left its announcer")
	}
}
