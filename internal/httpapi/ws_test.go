package httpapi_test

import (
	"testing"
	"time"

	"github.com/privicore/privicore/internal/enginetest"
)

func TestAckArrivesOnEveryJoinedSocketOfTheProfileOnly(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	alice := a.activeUser("alice")
	bob := a.activeUser("bob")

	// Both the /ws path on the API port and the separate proxy port serve channels.
	s1 := join(t, e.WSURL, alice.Token)
	s2 := join(t, "ws://"+e.WSAddr()+"/", alice.Token)
	sb := join(t, e.WSURL, bob.Token)

	id := accepted(t, a.postJSON("/public-key/register-public-key", alice.Token, map[string]string{"publicKey": alice.Key}))
	for _, s := range []*socket{s1, s2} {
		ack := s.awaitAck(id)
		if ack["command_status"] != float64(2) || ack["body"] != "Command completed successfully" {
			t.Fatalf("ack %v", ack)
		}
	}
	sb.noEventFor(id, 300*time.Millisecond)

	// A rejection carries the reason key.
	id = accepted(t, a.postJSON("/profile/change-password", alice.Token, map[string]string{"currentPassword": "x", "newPassword": "An0ther!strong-passphrase-here"}))
	if ack := s1.awaitAck(id); ack["command_status"] != float64(3) || ack["body"] != "profile.wrong_password" {
		t.Fatalf("rejection ack %v", ack)
	}
}

func TestEventsBeforeJoinAreDelivered(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("late")
	id := accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": u.Key}))
	a.succeed(id)
	s := join(t, e.WSURL, u.Token)
	if ack := s.awaitAck(id); ack["command_status"] != float64(2) {
		t.Fatalf("buffered ack %v", ack)
	}
}

func TestJoinWithBadTokenIsRefusedAndClosed(t *testing.T) {
	e := enginetest.Start(t)
	s := dial(t, e.WSURL)
	s.send(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": "T-bad", "correlationId": "abc"}})
	m := s.read(5 * time.Second)
	data, _ := m["data"].(map[string]any)
	if m["status"] != float64(401) || m["correlationId"] != "abc" || data["message"] != "invalid token" {
		t.Fatalf("reply %v", m)
	}
	s.closedWithin(5 * time.Second)
}

func TestJoinEchoesCorrelationIDAndProfileWithoutKeyMayJoin(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.register("fresh") // no key yet: it must still hear its key registration's ack
	s := dial(t, e.WSURL)
	s.send(map[string]any{"action": "joinChannel", "data": map[string]string{"authorizationToken": u.Token, "correlationId": "corr-42"}})
	m := s.read(5 * time.Second)
	data, _ := m["data"].(map[string]any)
	if m["status"] != float64(200) || m["correlationId"] != "corr-42" || data["channelId"] == "" || data["message"] != "Successfully joined profile channel." {
		t.Fatalf("join reply %v", m)
	}
}
