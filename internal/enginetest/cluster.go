package enginetest

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/pgtest"
)

// Cluster is several engine replicas as an operator deploys them: one
// PostgreSQL database (a fresh one on the test server, internal/pgtest),
// one KEK, and one NATS server of their own with JetStream, whose auth
// callout for devices is the engines'. Without PostgreSQL the test skips
// (or fails under PRIVICORE_REQUIRE_POSTGRES).
type Cluster struct {
	Engines []*Engine
	DSN     string         // the database every replica uses
	NATS    *server.Server // the bus every replica and device connects to
	NATSURL string         // its client URL for devices (no credentials: the callout authenticates them)
	KEK     []byte
}

// StartCluster starts n replicas, stopped when the test ends. configure,
// if given, adjusts replica i's configuration first.
func StartCluster(t testing.TB, n int, configure ...func(i int, c *engine.Config)) *Cluster {
	t.Helper()
	c := &Cluster{DSN: pgtest.DSN(t)}
	c.KEK = KEKFor(t, c.DSN)
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := issuer.Seed()
	pub, _ := issuer.PublicKey()
	sys := server.NewAccount("SYS")
	c.NATS = NATSServer(t, &server.Options{Accounts: []*server.Account{sys}, SystemAccount: "SYS",
		JetStream: true, StoreDir: t.TempDir(),
		Users:       []*server.User{{Username: "privicore", Password: "engine-pw"}, {Username: "sys", Password: "sys-pw", Account: sys}},
		AuthCallout: &server.AuthCallout{Issuer: pub, AuthUsers: []string{"privicore", "sys"}}})
	c.NATSURL = c.NATS.ClientURL()
	for i := range n {
		cfg := engine.Config{DataDir: t.TempDir(), Database: c.DSN, KEK: c.KEK,
			NATSURL:         strings.Replace(c.NATSURL, "nats://", "nats://privicore:engine-pw@", 1),
			NATSCalloutSeed: string(seed),
			NATSSystemURL:   strings.Replace(c.NATSURL, "nats://", "nats://sys:sys-pw@", 1)}
		for _, f := range configure {
			f(i, &cfg)
		}
		c.Engines = append(c.Engines, StartWith(t, cfg))
	}
	return c
}

// NATSServer runs a NATS server with opts on a free loopback port,
// stopped when the test ends.
func NATSServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// NATSCluster runs n NATS servers on loopback routed into one cluster,
// each configured by opts (called once per node), stopped with the test.
// It returns when every node has a route to every other.
func NATSCluster(t testing.TB, n int, opts func() *server.Options) []*server.Server {
	t.Helper()
	var nodes []*server.Server
	var routes []string
	for i := range n {
		o := opts()
		o.ServerName = "node" + string(rune('1'+i))
		o.Cluster = server.ClusterOpts{Name: "privicore-test", Host: "127.0.0.1", Port: -1}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		srv := NATSServer(t, o)
		routes = append(routes, "nats://"+srv.ClusterAddr().String())
		nodes = append(nodes, srv)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, srv := range nodes {
		for srv.NumRemotes() < n-1 {
			if time.Now().After(deadline) {
				t.Fatalf("cluster not formed: %s has %d remotes", srv.Name(), srv.NumRemotes())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}
