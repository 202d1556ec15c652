package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/syncbuf"
)

// cluster is a deployment of three replicas as an operator runs one, in
// processes: PostgreSQL (internal/pgtest), three `privicore serve` on it,
// and a three-node NATS cluster with JetStream whose auth callout is the
// engines (embedded servers in cluster mode, in the test process).
type cluster struct {
	t        *testing.T
	dsn      string
	replicas []*engineProcess
	urls     []string
	nodes    []*server.Server
}

// startCluster starts the cluster; it ends with the test.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: pgtest.DSN(t)}
	secrets := t.TempDir()
	kek, seed := filepath.Join(secrets, "kek"), filepath.Join(secrets, "callout.seed")
	if out, err := cli(t, secrets, "", "kek", "generate", kek); err != nil {
		t.Fatalf("kek generate: %v: %s", err, out)
	}
	cmd := exec.Command(binary, "callout-key", "generate", seed)
	pub, err := cmd.Output()
	if err != nil {
		t.Fatalf("callout-key generate: %v", err)
	}
	issuer := strings.TrimSpace(string(pub))
	c.nodes = enginetest.NATSCluster(t, 3, func() *server.Options {
		sys := server.NewAccount("SYS")
		return &server.Options{Accounts: []*server.Account{sys}, SystemAccount: "SYS", JetStream: true, StoreDir: t.TempDir(),
			Users:       []*server.User{{Username: "privicore", Password: "engine-pw"}, {Username: "sys", Password: "sys-pw", Account: sys}},
			AuthCallout: &server.AuthCallout{Issuer: issuer, AuthUsers: []string{"privicore", "sys"}}}
	})
	var urls, sys []string
	for _, n := range c.nodes {
		urls = append(urls, strings.Replace(n.ClientURL(), "nats://", "nats://privicore:engine-pw@", 1))
		sys = append(sys, strings.Replace(n.ClientURL(), "nats://", "nats://sys:sys-pw@", 1))
	}
	for range 3 {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		addr := freeAddr(t)
		// --lease-ttl 3s, the least allowed: after the kill, the survivors
		// take over the victim's commands (and announce its acks) 3 s on.
		p := runEngine(t, addr, "serve", "--addr", addr, "--ws-addr", "-", "--data-dir", dir, "--database", c.dsn, "--kek-file", kek,
			"--nats-url", strings.Join(urls, ","), "--nats-system-url", strings.Join(sys, ","), "--nats-callout-key", seed,
			"--auth-register-per-addr", "-1", "--max-conns-per-addr", "-1", "--lease-ttl", "3s")
		c.replicas = append(c.replicas, p)
		c.urls = append(c.urls, p.url)
	}
	return c
}

// daemon runs a long-lived privicore process (a device), stopped with the
// test; its output goes to out.
func daemon(t *testing.T, out *syncbuf.Buffer, conf string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "PRIVICORE_CONFIG_DIR="+conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); <-done })
}

// acceptedIDs records the id of every command a 202 answered, whichever
// request it was.
type acceptedIDs struct {
	next http.RoundTripper
	mu   sync.Mutex
	ids  []string
}

func (a *acceptedIDs) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := a.next.RoundTrip(r)
	if err == nil && res.StatusCode == http.StatusAccepted && res.Header.Get("X-DPT-CAB-ID") != "" {
		a.mu.Lock()
		a.ids = append(a.ids, res.Header.Get("X-DPT-CAB-ID"))
		a.mu.Unlock()
	}
	return res, err
}

func (a *acceptedIDs) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

// acks collects the ids of the command outcomes a session's socket
// delivered (not those Await learned by polling).
type acks struct {
	mu  sync.Mutex
	ids map[string]bool
}

func collectAcks(s *client.Session) *acks {
	a := &acks{ids: map[string]bool{}}
	go func() {
		for ev := range s.Events() {
			if ev.Type == "X-DPT-CAB-ID" && (ev.CommandStatus == 2 || ev.CommandStatus == 3) {
				a.mu.Lock()
				a.ids[ev.ID] = true
				a.mu.Unlock()
			}
		}
	}()
	return a
}

func (a *acks) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[id]
}

// session logs the demo user in through api, with its socket joined on ws
// (another replica), recording the commands accepted through it.
func (c *cluster) session(api, ws int, rec *acceptedIDs) *client.Session {
	c.t.Helper()
	opts := []client.Option{client.WithWebSocketURL(strings.Replace(c.urls[ws], "http://", "ws://", 1) + "/ws")}
	if rec != nil {
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: rec, Timeout: 30 * time.Second}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := client.Login(ctx, c.urls[api], "cluster", strongPassword, opts...)
	if err != nil {
		c.t.Fatalf("login through replica %d, socket on %d: %v", api, ws, err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

// TestClusterOfThreeReplicas runs the scale-out deployment in processes:
// PostgreSQL, a three-node NATS cluster, three engine replicas, three
// storage devices and an authenticator, clients calling one replica with
// their socket joined to another. A value stored through one replica is
// read back through another; a policy activated on one replica gates the
// next read on another (the authenticator votes), and its deactivation
// ends that at once; the load generator runs over all three; then one
// replica is killed with SIGKILL in
// the middle of a store load: no accepted command is lost or applied
// twice, every ack reaches its socket, and every stored value reads back
// byte-exact through a surviving replica.
func TestClusterOfThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel() // processes, their own database and ports: runs beside the others
	c := startCluster(t)
	conf, work := t.TempDir(), t.TempDir()
	must := activeCLIUser(t, c.urls[0], conf, work, "cluster")
	var devOut syncbuf.Buffer
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		// Each device is enrolled through another replica.
		must("device", "enroll", "--server="+c.urls[i-1], "--role", "storage", "--approve", "--name", name,
			"--key-out", filepath.Join(work, name+".key"), "--bundle-out", filepath.Join(work, name+".json"))
		daemon(t, &devOut, conf, "storage-device", "--config", filepath.Join(work, name+".json"), "--key", filepath.Join(work, name+".key"),
			"--dir", filepath.Join(work, name))
	}
	must("device", "enroll", "--role", "authenticator", "--approve", "--name", "phone",
		"--key-out", filepath.Join(work, "a.key"), "--bundle-out", filepath.Join(work, "a.json"))
	daemon(t, &devOut, conf, "authenticator", "--config", filepath.Join(work, "a.json"), "--key", filepath.Join(work, "a.key"), "--approve-all")
	commandtest.Eventually(t, "three storage devices online, seen through replica 2", func() bool {
		out, _ := runCLI(t, conf, "", "storage", "list", "--server="+c.urls[1])
		return strings.Count(out, "true") == 3
	})

	// Stored through replica 1 (socket on 2), read through 3 (socket on 1).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a guard against a hang
	defer cancel()
	key := client.NewDataKey()
	value := []byte("one vault, three replicas")
	dtk, err := c.session(0, 1, nil).Store(ctx, key, value, client.FileMeta{FileName: "v", Extension: "txt", Size: int64(len(value)), Path: "/"})
	if err != nil {
		t.Fatalf("store through replica 1: %v\n%s", err, c.replicas[0].output())
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	got, err := c.session(2, 0, nil).Retrieve(rctx, key, dtk)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("read through replica 3: %q, %v", got, err)
	}

	// A policy activated through replica 1 gates the very next read through
	// replica 2: the authenticator process approves, the pool's events and
	// the data reach the socket on replica 3. Deactivated through replica 3,
	// the reads after it are not gated.
	must("policy", "register", "--server="+c.urls[0], "--name", "reads", "--template", "data-protection", "--event", "dt-request")
	must("policy", "activate", "--server="+c.urls[0], "reads")
	var votes atomic.Int32
	vctx, vcancel := context.WithTimeout(ctx, time.Minute)
	defer vcancel()
	got, err = c.session(1, 2, nil).Retrieve(vctx, key, dtk, client.OnVote(func(client.PoolEvent) { votes.Add(1) }))
	if err != nil || !bytes.Equal(got, value) || votes.Load() == 0 {
		t.Fatalf("a read gated by a policy activated on another replica: %q, %v, %d pool events\nreplica 2:\n%s\nreplica 3:\n%s",
			got, err, votes.Load(), tail(c.replicas[1].output(), 60), tail(c.replicas[2].output(), 60))
	}
	must("policy", "deactivate", "--server="+c.urls[2], "reads")
	votes.Store(0)
	if got, err := c.session(0, 1, nil).Retrieve(vctx, key, dtk, client.OnVote(func(client.PoolEvent) { votes.Add(1) })); err != nil || !bytes.Equal(got, value) || votes.Load() != 0 {
		t.Fatalf("a read after the policy's deactivation on another replica: %q, %v, %d pool events", got, err, votes.Load())
	}

	// The load generator spreads its clients over the replicas, each socket
	// on the next replica: every store's acks cross replicas.
	bench := exec.Command(binary, "bench", "store", "--server", strings.Join(c.urls, ","), "--username", "cluster", "--clients", "3", "--duration", "1s")
	bench.Env = append(os.Environ(), "PRIVICORE_CONFIG_DIR="+conf, "PRIVICORE_PASSWORD="+strongPassword)
	if out, err := bench.CombinedOutput(); err != nil || !strings.Contains(string(out), "failed 0,") || strings.Contains(string(out), "ok 0,") {
		t.Fatalf("bench store over the three replicas: %v\n%s", err, out)
	}

	// The kill: workers store through every replica, their sockets joined
	// to the two that survive; replica 3 is killed once commands are
	// flowing through it.
	const victim = 2
	type worker struct {
		rec    *acceptedIDs
		acks   *acks
		mu     sync.Mutex
		stored map[string][]byte // token → value
		errs   []error           // the first failed stores
		victim bool              // its requests go to the replica that is killed
	}
	var workers []*worker
	for w := range 6 {
		ws := w % 2 // a survivor
		wk := &worker{rec: &acceptedIDs{next: http.DefaultTransport}, stored: map[string][]byte{}, victim: w%3 == victim}
		s := c.session(w%3, ws, wk.rec)
		wk.acks = collectAcks(s)
		workers = append(workers, wk)
		go func() {
			for i := 0; ; i++ {
				v := make([]byte, 64+i%512)
				rand.Read(v)
				sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				tok, err := s.Store(sctx, key, v, client.FileMeta{FileName: fmt.Sprintf("w%d-%d", w, i), Extension: "bin", Size: int64(len(v)), Path: "/"})
				cancel()
				if err != nil {
					wk.mu.Lock()
					if len(wk.errs) < 5 {
						wk.errs = append(wk.errs, err)
					}
					wk.mu.Unlock()
					if wk.victim {
						return // its replica is gone
					}
					continue
				}
				wk.mu.Lock()
				wk.stored[tok] = v
				done := len(wk.stored) >= 40
				wk.mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	commandtest.Eventually(t, "commands accepted through the victim by each of its workers", func() bool {
		for _, wk := range workers {
			if wk.victim && len(wk.rec.list()) < 6 {
				return false
			}
		}
		return true
	})
	c.replicas[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-c.replicas[victim].done
	state := func() (done bool, report string) {
		done = true
		for i, wk := range workers {
			wk.mu.Lock()
			report += fmt.Sprintf("\n  worker %d: %d stored, %d accepted, first failures %v", i, len(wk.stored), len(wk.rec.list()), wk.errs)
			if !wk.victim && len(wk.stored) < 40 {
				done = false
			}
			wk.mu.Unlock()
		}
		return done, report
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		done, report := state()
		if done {
			t.Logf("after the kill:%s", report)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the surviving workers did not finish their stores within 5 minutes:%s\nreplica 1:\n%s", report, tail(c.replicas[0].output(), 40))
		}
	}

	// 0 lost: every accepted command finished, through a survivor.
	survivor := client.New(c.urls[0])
	if _, err := survivor.Authenticate(ctx, "cluster", strongPassword); err != nil {
		t.Fatal(err)
	}
	accepted, throughVictim := 0, 0
	for _, wk := range workers {
		if wk.victim {
			throughVictim += len(wk.rec.list())
		}
		for _, id := range wk.rec.list() {
			accepted++
			commandtest.EventuallyWithin(t, "command "+id+" finished", 2*time.Minute, func() bool {
				st, err := survivor.CommandStatus(ctx, id)
				return err == nil && (st.CommandStatus == 2 || st.CommandStatus == 3)
			})
			// Every ack reaches its socket (joined to a survivor).
			commandtest.EventuallyWithin(t, "the ack of "+id+" on its socket", 2*time.Minute, func() bool { return wk.acks.has(id) })
		}
	}
	// Every stored value reads back byte-exact through a survivor.
	reader := c.session(1, 0, nil)
	tokens := 0
	for _, wk := range workers {
		wk.mu.Lock()
		for tok, v := range wk.stored {
			tokens++
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			got, err := reader.Retrieve(rctx, key, tok)
			cancel()
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("token %s through replica 2: %v (%d bytes, want %d); in the database: %s\nreplica 2:\n%s",
					tok, err, len(got), len(v), c.describeToken(tok), tail(c.replicas[1].output(), 80))
			}
		}
		wk.mu.Unlock()
	}
	// 0 applied twice, and nothing left pending: read the database.
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dupReservations, pending int
	db.QueryRow(`SELECT COUNT(*) FROM (SELECT reservation_id FROM data_tokens GROUP BY reservation_id HAVING COUNT(*) > 1) d`).Scan(&dupReservations)
	db.QueryRow(`SELECT COUNT(*) FROM commands WHERE status = 1`).Scan(&pending)
	if dupReservations != 0 || pending != 0 {
		t.Fatalf("%d reservations applied more than once, %d commands pending", dupReservations, pending)
	}
	t.Logf("%d commands accepted (%d through the killed replica), %d tokens read back", accepted, throughVictim, tokens)
}

// describeToken is what the database holds about data token tok: its
// row's blob and state, the devices recorded as holding the blob, and what
// is queued for them.
func (c *cluster) describeToken(tok string) string {
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var blob, state string
	if err := db.QueryRow(`SELECT blob_id, state FROM data_tokens WHERE token = $1`, tok).Scan(&blob, &state); err != nil {
		return "the token's row: " + err.Error()
	}
	out := fmt.Sprintf("blob %s, state %s; holders:", blob, state)
	rows, err := db.Query(`SELECT device_id FROM device_blobs WHERE blob_id = $1`, blob)
	if err == nil {
		for rows.Next() {
			var d string
			rows.Scan(&d)
			out += " " + d
		}
		rows.Close()
	}
	var queued int
	db.QueryRow(`SELECT COUNT(*) FROM device_outbox WHERE blob_id = $1`, blob).Scan(&queued)
	return out + fmt.Sprintf("; %d outbox entries", queued)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
