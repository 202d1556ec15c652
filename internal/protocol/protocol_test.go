package protocol_test

import (
	"testing"

	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

func TestSubjectsNameTheirDevice(t *testing.T) {
	root := protocol.DeviceSubject("pc", "dev-1")
	for _, s := range []string{protocol.To(root, protocol.OpStore), protocol.From(root, protocol.OpHello), protocol.ToAll(root), protocol.FromAll(root)} {
		if got := protocol.SubjectDevice("pc", s); got != "dev-1" {
			t.Errorf("SubjectDevice(%q) = %q", s, got)
		}
	}
	if got, want := protocol.FromAny("pc", protocol.OpVote), "pc.dev.*.from.vote"; got != want {
		t.Errorf("FromAny = %q, want %q", got, want)
	}
	// A device may send only on <root>.from.> and hear only <root>.to.>:
	// the two never overlap, so a device cannot impersonate the engine.
	if protocol.To(root, "x") == protocol.From(root, "x") {
		t.Error("to and from subjects coincide")
	}
	id := protocol.ClientID("dev-1")
	if !protocol.IsDeviceClient(id) || protocol.ClientDevice(id) != "dev-1" {
		t.Errorf("ClientID round trip: %q", id)
	}
	if protocol.IsDeviceClient("privicore-engine") {
		t.Error("the engine's bus user counts as a device")
	}
}

// An answer's MAC binds the pool, the attempt, the device and the vote to
// the device's key: changing any of them, or signing with another key,
// fails verification.
func TestAnswerMACBindsEveryField(t *testing.T) {
	engine, _ := keys.Generate()
	device, _ := keys.Generate()
	other, _ := keys.Generate()
	sign := func(a protocol.Answer, dev string) protocol.Answer {
		t.Helper()
		if err := protocol.Sign(&a, dev, device, engine.PublicKey()); err != nil {
			t.Fatal(err)
		}
		return a
	}
	good := sign(protocol.Answer{PoolID: "pool-1", Attempt: 2, Vote: "yes"}, "dev-1")
	if err := protocol.Verify(&good, "dev-1", engine, device.PublicKey()); err != nil {
		t.Fatalf("a good answer fails: %v", err)
	}
	for name, tamper := range map[string]func(a *protocol.Answer) (string, bool){
		"vote":      func(a *protocol.Answer) (string, bool) { a.Vote = "no"; return "dev-1", false },
		"attempt":   func(a *protocol.Answer) (string, bool) { a.Attempt = 3; return "dev-1", false },
		"pool":      func(a *protocol.Answer) (string, bool) { a.PoolID = "pool-2"; return "dev-1", false },
		"device":    func(a *protocol.Answer) (string, bool) { return "dev-2", false },
		"other key": func(a *protocol.Answer) (string, bool) { return "dev-1", true },
		"bad mac":   func(a *protocol.Answer) (string, bool) { a.MAC = "!!"; return "dev-1", false },
	} {
		a := good
		dev, otherKey := tamper(&a)
		pub := device.PublicKey()
		if otherKey {
			pub = other.PublicKey()
		}
		if err := protocol.Verify(&a, dev, engine, pub); err == nil {
			t.Errorf("%s: a tampered answer verifies", name)
		}
	}
}
