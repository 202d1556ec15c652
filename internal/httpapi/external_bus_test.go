package httpapi_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/privicore/privicore"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
)

// TestExternalNATS runs the engine on a NATS server of its own (--nats-url):
// devices connect there, presence is probed, stores and reads work, and a
// device that was away catches up.
func TestExternalNATS(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	srv := externalNATS(t, &server.Options{})
	e := enginetest.Start(t, func(c *engine.Config) { c.NATSURL = srv.ClientURL() })
	a := newAPI(t, e)
	u := a.activeUser("external")
	d1 := a.storageDevice(u, "s1")
	d2 := a.storageDevice(u, "s2")
	if b := a.bundle(u.Token, d1Ident(a, u, "s1")); b.BusURL != srv.ClientURL() {
		t.Fatalf("bundle bus URL %s, want the external %s", b.BusURL, srv.ClientURL())
	}
	waitSeenOnline(a, u, "s1", "s2")
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
	back := a.startDevice(u, d1Ident(a, u, "s2"), d2.Dir()) // with its files
	waitBlobsFor(t, back, 2, 45*time.Second)
}

// waitSeenOnline waits until the engine sees u's named storage devices
// online. Presence on an external server is probed: a store made before
// the engine sees a device is not sent to it (with none seen, it is
// rejected storage.write_failed).
func waitSeenOnline(a *api, u *user, names ...string) {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		on, all := a.devicesOnline(u), true
		for _, n := range names {
			all = all && on[n]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("devices %v not seen online: %v", names, on)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExternalNATSAuthCallout: on an external NATS configured with the
// engine as its auth callout, devices are authenticated against the
// engine's database and confined to their own subjects; with a system
// account connection the engine closes a removed device's connection.
func TestExternalNATSAuthCallout(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	issuer, _ := nkeys.CreateAccount()
	seed, _ := issuer.Seed()
	pub, _ := issuer.PublicKey()
	sys := server.NewAccount("SYS")
	srv := externalNATS(t, &server.Options{Accounts: []*server.Account{sys}, SystemAccount: "SYS",
		Users:       []*server.User{{Username: "privicore", Password: "engine-pw"}, {Username: "sys", Password: "sys-pw", Account: sys}},
		AuthCallout: &server.AuthCallout{Issuer: pub, AuthUsers: []string{"privicore", "sys"}}})
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://privicore:engine-pw@", 1)
	sysURL := strings.Replace(srv.ClientURL(), "nats://", "nats://sys:sys-pw@", 1)
	e := enginetest.Start(t, func(c *engine.Config) { c.NATSURL, c.NATSCalloutSeed, c.NATSSystemURL = url, string(seed), sysURL })
	a := newAPI(t, e)
	u := a.activeUser("callout")
	id1, id2 := a.approvedDevice(u, "d1"), a.approvedDevice(u, "d2")
	b1, b2 := a.bundle(u.Token, id1), a.bundle(u.Token, id2)
	if strings.Contains(b1.BusURL, "engine-pw") || b1.BusURL != srv.ClientURL() {
		t.Fatalf("the bundle's bus URL %q", b1.BusURL)
	}
	if _, err := connect(t, &privicore.Bundle{ClientID: b1.ClientID, ClientSecret: "wrong", BusURL: b1.BusURL, DeviceIdentifier: id1}, nil); err == nil {
		t.Fatal("a wrong secret connected")
	}
	errs := make(chan error, 10)
	nc1, err := connect(t, b1, errs)
	if err != nil {
		t.Fatalf("a device with its bundle: %v", err)
	}
	nc1.SubscribeSync(b2.BusSubjectPrefix + ".to.>") // another device's subjects
	nc1.Flush()
	expectViolation(t, errs, "subscribing to another device's subjects was not refused")
	nc1.Close()

	// A storage device works through it, and removal refuses new connections.
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id2})))
	a.startDevice(u, id2, t.TempDir())
	waitSeenOnline(a, u, "d2")
	s := join(t, e.WSURL, u.Token)
	wire, _ := ciphertext(t, 200)
	if got, _ := a.retrieve(s, u.Token, a.store(u, "callout", wire)); !bytes.Equal(got, wire) {
		t.Fatal("store and read through the callout-authenticated device failed")
	}
	nc1, err = connect(t, b1, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.succeed(accepted(t, a.postJSON("/device/remove", u.Token, map[string]string{"deviceIdentifier": id1})))
	waitClosed(t, nc1) // its grant would have lasted minutes
	if _, err := connect(t, b1, nil); err == nil {
		t.Fatal("a removed device still connects")
	}
}

// externalNATS runs a NATS server of its own on loopback, stopped with the test.
func externalNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	return enginetest.NATSServer(t, opts)
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

// TestBundleCarriesTheDeviceBusURL: with DeviceBusURL (serve's
// --device-bus-url) the bundles name the bus by the address devices reach
// it at, not by the engine's own.
func TestBundleCarriesTheDeviceBusURL(t *testing.T) {
	const public = "nats://bus-1.example:4222,nats://bus-2.example:4222"
	e := enginetest.Start(t, func(c *engine.Config) { c.DeviceBusURL = public })
	a := newAPI(t, e)
	u := a.activeUser("busurl")
	if got := a.bundle(u.Token, a.approvedDevice(u, "s1")).BusURL; got != public {
		t.Fatalf("the bundle's bus URL is %q, want %q", got, public)
	}
}
