package httpapi_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestExternalNATS runs the engine on a NATS server of its own (--nats-url):
// devices connect there, presence is probed, stores and reads work, and a
// device that was away catches up.
func TestExternalNATS(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("the external NATS did not start")
	}
	t.Cleanup(srv.Shutdown)
	e := enginetest.Start(t, func(c *engine.Config) { c.NATSURL = srv.ClientURL() })
	a := newAPI(t, e)
	u := a.activeUser("external")
	d1 := a.storageDevice(u, "s1")
	d2 := a.storageDevice(u, "s2")
	if b := a.bundle(u.Token, d1Ident(a, u, "s1")); b.BusURL != srv.ClientURL() {
		t.Fatalf("bundle bus URL %s, want the external %s", b.BusURL, srv.ClientURL())
	}
	s := join(t, e.WSURL, u.Token)
	wire, _ := ciphertext(t, 300)
	dtk := a.store(u, "ext", wire)
	if got, _ := a.retrieve(s, u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatal("read through the external NATS failed")
	}
	waitBlobs(t, d1, 1)
	waitBlobs(t, d2, 1)

	// s2 goes away: it is seen offline, stores go on with s1, and s2
	// catches up when it is back.
	d2.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for a.devicesOnline(u)["s2"] && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if on := a.devicesOnline(u); on["s2"] || !on["s1"] {
		t.Fatalf("presence %v", on)
	}
	wire2, _ := ciphertext(t, 300)
	a.store(u, "ext", wire2)
	waitBlobs(t, d1, 2)
	back := a.startDevice(u, d1Ident(a, u, "s2"), filepath.Dir(d2.Dir())) // with its files
	waitBlobs(t, back, 2)
}

// d1Ident returns the identifier of u's device named name.
func d1Ident(a *api, u *user, name string) string {
	for id, d := range a.devices(u.Token) {
		if d.Name == name {
			return id
		}
	}
	a.t.Fatalf("no device %s", name)
	return ""
}

// devicesOnline maps u's device names to their online state.
func (a *api) devicesOnline(u *user) map[string]bool {
	out := map[string]bool{}
	for _, d := range a.devices(u.Token) {
		out[d.Name] = d.Online
	}
	return out
}
