package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// serve runs `privicore serve` in-process on free loopback ports and a
// fresh data dir, with args after; a serve that starts after all is
// stopped by the context, and reported as a nil error.
func serve(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	os.Chmod(dir, 0o700) // t.TempDir is 0755; the engine refuses that
	base := []string{"serve", "--addr", "127.0.0.1:0", "--ws-addr", "-", "--bus-addr", "127.0.0.1:0", "--data-dir", dir, "--log-level", "error"}
	var out bytes.Buffer
	return run(ctx, append(base, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, &out)
}

// Flags that only mean something with another one, or values serve cannot
// work with, stop serve with an error naming them instead of being ignored.
func TestServeRefusesFlagsItWouldIgnore(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--nats-callout-key", "seed.txt"}, "--nats-callout-key needs --nats-url"},
		{nil, []string{"--nats-system-url", "nats://sys:pw@127.0.0.1:1"}, "--nats-system-url needs --nats-url"},
		{nil, []string{"--nats-account", "DEVICES"}, "--nats-account needs --nats-url"},
		{map[string]string{"PRIVICORE_NATS_ACCOUNT": "DEVICES"}, nil, "--nats-account needs --nats-url"},
		{nil, []string{"--nats-url", "nats://127.0.0.1:1", "--nats-account", "DEVICES"}, "--nats-account needs --nats-callout-key"},
		{nil, []string{"--min-acks", "0"}, "--min-acks must be at least 1 (got 0)"},
		{nil, []string{"--min-acks", "-2"}, "--min-acks must be at least 1 (got -2)"},
		{map[string]string{"PRIVICORE_MIN_ACKS": "0"}, nil, "--min-acks must be at least 1"},
		{nil, []string{"--lease-ttl", "1s"}, "--lease-ttl must be at least 3s (got 1s)"},
		{map[string]string{"PRIVICORE_LEASE_TTL": "0s"}, nil, "--lease-ttl must be at least 3s (got 0s)"},
		{nil, []string{"--body-min-rate", "0"}, "--body-min-rate must be at least 1"},
		{nil, []string{"--body-timeout", "0s"}, "--body-timeout must be positive"},
		{nil, []string{"--max-conns-per-addr", "-5"}, "--max-conns-per-addr"},
	} {
		err := serve(t, c.env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v (env %v): %v, want an error with %q", c.args, c.env, err, c.want)
		}
	}
}

// The embedded bus failing to start says where and why, at once: its port
// is taken here.
func TestServeSaysWhyTheBusCannotStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	err = serve(t, nil, "--bus-addr", addr)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve with the bus port taken: %v; want an error naming %s and the cause", err, addr)
	}
}
