package httpapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// TestApproveBeforeKey (issue #12 A.3): a device may be approved before
// its key is registered, and its configuration downloaded; it is not
// active until the key comes: the bus refuses it and it cannot take a role.
// With the key registered, the same bundle connects and the device works
// as a storage device.
func TestApproveBeforeKey(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("approve-first")
	_, id := a.requestDevice(u.Token, "early")

	a.succeed(accepted(t, a.postJSON("/device/approve-device", u.Token, map[string]string{"deviceIdentifier": id})))
	if d := a.devices(u.Token)[id]; d.State != "approved" || d.HasPublicKey || d.Online {
		t.Fatalf("approved keyless device %+v", d)
	}
	b := a.bundle(u.Token, id) // downloading the configuration works without the key
	if b.ClientID == "" || b.ClientSecret == "" || b.DeviceIdentifier != id {
		t.Fatalf("bundle %+v", b)
	}
	if nc, err := connect(t, b, nil); err == nil {
		nc.Close()
		t.Fatal("the bus accepted an approved device without a public key")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("refusal: %v", err)
	}
	for _, path := range []string{"/storage/register", "/verified-authenticator/register"} {
		a.rejected(accepted(t, a.postJSON(path, u.Token, map[string]string{"deviceIdentifier": id})), "device.public_key_required")
	}
	if d := a.devices(u.Token)[id]; d.Role != "none" {
		t.Fatalf("keyless device got role %q", d.Role)
	}

	// The key arrives: the bundle downloaded before it now connects.
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	a.succeed(accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": keys.SignedPublic(priv), "deviceIdentifier": id})))
	nc, err := connect(t, b, nil)
	if err != nil {
		t.Fatalf("active device refused: %v", err)
	}
	nc.Close()
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id})))
	d, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	s := join(t, e.WSURL, u.Token)
	wire, _ := ciphertext(t, 300)
	dtk := a.store(u, "early", wire)
	if got, _ := a.retrieve(s, u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatal("the device approved before its key does not serve the data")
	}
	waitBlobs(t, d, 1)
}

// TestApproveBeforeKeyAuthCallout: on an external NATS that asks the
// engine (auth callout), an approved device without key is refused too,
// and connects with the same bundle once its key is registered.
func TestApproveBeforeKeyAuthCallout(t *testing.T) {
	issuer, _ := nkeys.CreateAccount()
	seed, _ := issuer.Seed()
	pub, _ := issuer.PublicKey()
	srv := externalNATS(t, &server.Options{Users: []*server.User{{Username: "privicore", Password: "engine-pw"}},
		AuthCallout: &server.AuthCallout{Issuer: pub, AuthUsers: []string{"privicore"}}})
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://privicore:engine-pw@", 1)
	e := enginetest.Start(t, func(c *engine.Config) { c.NATSURL, c.NATSCalloutSeed = url, string(seed) })
	a := newAPI(t, e)
	u := a.activeUser("approve-first-callout")
	_, id := a.requestDevice(u.Token, "early")
	a.succeed(accepted(t, a.postJSON("/device/approve-device", u.Token, map[string]string{"deviceIdentifier": id})))
	b := a.bundle(u.Token, id)
	if nc, err := connect(t, b, nil); err == nil {
		nc.Close()
		t.Fatal("the callout accepted an approved device without a public key")
	}
	a.deviceKey(u.Token, id)
	nc, err := connect(t, b, nil)
	if err != nil {
		t.Fatalf("active device refused by the callout: %v", err)
	}
	nc.Close()
}
