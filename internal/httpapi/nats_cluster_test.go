package httpapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// TestNATSClusterAuthCallout runs the engine against a three-node NATS
// cluster whose nodes all have the engine as their auth callout: the
// bundle lists every node; a storage device on another node than the
// engine's is authenticated across the cluster and serves a store and a
// retrieval; a wrong secret is refused on every node; when the device's
// node goes down it reconnects to another and a retrieval still works, as
// it does when the engine's node goes down too; removed, its connection
// is closed and it is refused.
func TestNATSClusterAuthCallout(t *testing.T) {
	t.Parallel() // it mostly waits (reconnects, the outbox's period): let it overlap the others
	issuer, _ := nkeys.CreateAccount()
	seed, _ := issuer.Seed()
	pub, _ := issuer.PublicKey()
	nodes := enginetest.NATSCluster(t, 3, func() *server.Options {
		sys := server.NewAccount("SYS")
		return &server.Options{Accounts: []*server.Account{sys}, SystemAccount: "SYS",
			Users:       []*server.User{{Username: "privicore", Password: "engine-pw"}, {Username: "sys", Password: "sys-pw", Account: sys}},
			AuthCallout: &server.AuthCallout{Issuer: pub, AuthUsers: []string{"privicore", "sys"}}}
	})
	var urls, sysURLs, plain []string
	for _, n := range nodes {
		urls = append(urls, strings.Replace(n.ClientURL(), "nats://", "nats://privicore:engine-pw@", 1))
		sysURLs = append(sysURLs, strings.Replace(n.ClientURL(), "nats://", "nats://sys:sys-pw@", 1))
		plain = append(plain, n.ClientURL())
	}
	e := enginetest.Start(t, func(c *engine.Config) {
		c.NATSURL, c.NATSCalloutSeed, c.NATSSystemURL = strings.Join(urls, ","), string(seed), strings.Join(sysURLs, ",")
	})
	a := newAPI(t, e)
	u := a.activeUser("cluster")
	id := a.approvedDevice(u, "s1")
	b := a.bundle(u.Token, id)
	if b.BusURL != strings.Join(plain, ",") {
		t.Fatalf("the bundle's bus URL %q, want every node %q", b.BusURL, strings.Join(plain, ","))
	}
	engineNode := nodeOf(t, nodes, "privicore")

	// A wrong secret is refused by every node.
	for i, n := range nodes {
		if _, err := connect(t, &privicore.Bundle{ClientID: b.ClientID, ClientSecret: "wrong", BusURL: n.ClientURL(), DeviceIdentifier: id}, nil); err == nil {
			t.Fatalf("a wrong secret connected to node %d", i)
		}
	}

	// The device is given only the nodes the engine is not on, so its
	// authentication and its traffic cross the cluster.
	var others []string
	for i, n := range nodes {
		if i != engineNode {
			others = append(others, n.ClientURL())
		}
	}
	onOthers := *b
	onOthers.BusURL = strings.Join(others, ",")
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id})))
	priv, _ := keys.Generate()
	d, err := storagedevice.Start(storagedevice.Config{Bundle: &onOthers, Key: priv, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	waitSeenOnline(a, u, "s1")
	deviceNode := nodeOf(t, nodes, b.ClientID)
	if deviceNode == engineNode {
		t.Fatalf("the device is on the engine's node %d", engineNode)
	}
	s := join(t, e.WSURL, u.Token)
	wire, _ := ciphertext(t, 300)
	dtk := a.store(u, "cluster", wire)
	if got, _ := a.retrieve(s, u.Token, dtk); !bytes.Equal(got, wire) {
		t.Fatal("store and read through a device on another node failed")
	}
	waitBlobs(t, d, 1)

	// Its node goes down: it reconnects to another, and reads go on.
	nodes[deviceNode].Shutdown()
	commandtest.Eventually(t, "the device reconnects to another node", func() bool { return nodeOnline(nodes, deviceNode, b.ClientID) >= 0 })
	readsBack := func() bool { got, _ := a.retrieve(s, u.Token, dtk); return bytes.Equal(got, wire) }
	commandtest.Eventually(t, "a read after the device's node went down", readsBack)

	// The engine's node goes down too: the engine reconnects to the last
	// node with its auth callout, and so does the device; reads go on.
	nodes[engineNode].Shutdown()
	last := 3 - deviceNode - engineNode
	commandtest.Eventually(t, "the engine and the device reconnect to the last node", func() bool {
		return nodeOnline(nodes[last:last+1], -1, "privicore") >= 0 && nodeOnline(nodes[last:last+1], -1, b.ClientID) >= 0
	})
	commandtest.Eventually(t, "a read after the engine's node went down", readsBack)

	// Removed, its connection is closed on whichever node it is (through
	// the system account; its grant would have lasted minutes) and it is
	// refused on every node.
	a.succeed(accepted(t, a.postJSON("/device/remove", u.Token, map[string]string{"deviceIdentifier": id})))
	commandtest.Eventually(t, "a removed device's connection is closed", func() bool { return nodeOnline(nodes[last:last+1], -1, b.ClientID) < 0 })
	if _, err := connect(t, &privicore.Bundle{ClientID: b.ClientID, ClientSecret: b.ClientSecret, BusURL: nodes[last].ClientURL(), DeviceIdentifier: id}, nil); err == nil {
		t.Fatal("a removed device connected")
	}
}

// nodeOf is the index of the node the bus user is connected to.
func nodeOf(t *testing.T, nodes []*server.Server, user string) int {
	t.Helper()
	if i := nodeOnline(nodes, -1, user); i >= 0 {
		return i
	}
	t.Fatalf("%s is connected to no node", user)
	return -1
}

// nodeOnline is the index of a node other than skip where the bus user
// is connected, or -1.
func nodeOnline(nodes []*server.Server, skip int, user string) int {
	for i, srv := range nodes {
		if i == skip {
			continue
		}
		if c, err := srv.Connz(&server.ConnzOptions{User: user}); err == nil && len(c.Conns) > 0 {
			return i
		}
	}
	return -1
}
