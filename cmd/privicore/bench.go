package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/client"
)

// benchOpts are the load generator's settings.
type benchOpts struct {
	server, username string
	clients, size    int
	sockets          int
	duration         time.Duration
	fromStdin        bool
	cpuProfile       string
}

// newBenchCmd is the load generator: `privicore bench store|retrieve|ack`.
func newBenchCmd(e *env) *cobra.Command {
	o := &benchOpts{}
	cmd := &cobra.Command{Use: "bench", Short: "Measure a running engine: full stores, retrievals, idle ack latency"}
	for _, kind := range []string{"store", "retrieve", "ack"} {
		c := &cobra.Command{Use: kind, Args: cobra.NoArgs, Short: map[string]string{
			"store":    "N clients doing the full small-payload flow (reserve, temporary token, exchange, file meta; acks on the socket)",
			"retrieve": "N clients requesting stored tokens and receiving the ciphertext on the socket",
			"ack":      "one client, one command at a time: the latency of an idle command's ack",
		}[kind], RunE: func(cmd *cobra.Command, _ []string) error { return runBench(e, o, kind) }}
		f := c.Flags()
		f.StringVar(&o.server, "server", defaultServer, "engine URL; several, comma-separated (replicas): the clients call them round-robin, each with its socket joined to the next one")
		f.StringVar(&o.username, "username", "demo", "profile (with storage devices) to use")
		f.BoolVar(&o.fromStdin, "password-stdin", false, "read the password from standard input (else PRIVICORE_PASSWORD)")
		f.IntVar(&o.clients, "clients", 64, "concurrent clients")
		f.IntVar(&o.sockets, "sockets", 0, "WebSocket sessions the clients share (0: one per client); every socket of a profile receives every event of the profile")
		f.IntVar(&o.size, "size", 1024, "plaintext bytes per payload")
		f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
		f.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
		cmd.AddCommand(c)
	}
	return cmd
}

func runBench(e *env, o *benchOpts, kind string) error {
	pw, err := password(e, o.fromStdin)
	if err != nil {
		return err
	}
	if kind == "ack" {
		o.clients = 1
	}
	ctx := e.ctx
	// Several servers (replicas): client i calls server i, its socket
	// joined to the next one, so that every ack crosses replicas.
	servers := strings.Split(o.server, ",")
	clientOf := func(i int, token string) *client.Client {
		opts := []client.Option{client.WithToken(token)}
		if len(servers) > 1 {
			ws := strings.Replace(strings.Replace(servers[(i+1)%len(servers)], "https://", "wss://", 1), "http://", "ws://", 1)
			opts = append(opts, client.WithWebSocketURL(strings.TrimRight(ws, "/")+"/ws"))
		}
		return client.New(servers[i%len(servers)], opts...)
	}
	// One login (authenticate is rate-limited), one session per client.
	tok, err := client.New(servers[0]).Authenticate(ctx, o.username, pw)
	if err != nil {
		return err
	}
	if o.sockets <= 0 || o.sockets > o.clients {
		o.sockets = o.clients
	}
	sessions := make([]*client.Session, o.clients)
	for i := range o.sockets {
		s, err := client.NewSession(ctx, clientOf(i, tok.Value))
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		defer s.Close()
		sessions[i] = s
	}
	for i := o.sockets; i < o.clients; i++ {
		sessions[i] = sessions[i%o.sockets]
	}
	key := client.NewDataKey()
	payload := make([]byte, o.size)
	var tokens []string
	if kind == "retrieve" {
		for i := 0; i < 64; i++ {
			t, err := sessions[0].Store(ctx, key, payload, client.FileMeta{FileName: "bench"})
			if err != nil {
				return fmt.Errorf("preparing tokens: %w", err)
			}
			tokens = append(tokens, t)
		}
	}
	op := func(s *client.Session, i int) error {
		switch kind {
		case "store":
			_, err := s.Store(ctx, key, payload, client.FileMeta{FileName: "bench"})
			return err
		case "retrieve":
			_, err := s.Retrieve(ctx, key, tokens[i%len(tokens)])
			return err
		default:
			_, err := s.Do(ctx, func() (string, error) { return s.Reserve(ctx, "bench-ack", 1) })
			return err
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for ci, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := ci; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(s, i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) == 0 {
		if err, _ := firstErr.Load().(error); err != nil {
			return fmt.Errorf("every operation failed: %w", err)
		}
		return errors.New("no operation completed")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	fmt.Fprintf(e.stdout, "%s: %d clients on %d sockets, %d-byte payloads, %s\n  ok %d, failed %d, %.0f/s\n  latency p50 %s, p99 %s, max %s\n",
		kind, o.clients, o.sockets, o.size, elapsed.Round(time.Millisecond), len(lat), failed.Load(), float64(len(lat))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	if err, _ := firstErr.Load().(error); err != nil {
		fmt.Fprintf(e.stdout, "  first error: %v\n", err)
	}
	return nil
}
