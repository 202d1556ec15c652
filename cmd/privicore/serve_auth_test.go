package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// serveErr runs serve with env and args and returns its error (it must stop
// before it starts).
func serveErr(t *testing.T, env map[string]string, args ...string) error {
	t.Helper()
	env["PRIVICORE_ADDR"], env["PRIVICORE_WS_ADDR"], env["PRIVICORE_BUS_ADDR"] = freeAddr(t), "-", freeAddr(t)
	env["PRIVICORE_DATA_DIR"] = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"serve"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve with bad auth limits: %v (ctx %v)", err, ctx.Err())
	}
	return err
}

func TestServeRefusesBadAuthLimits(t *testing.T) {
	err := serveErr(t, map[string]string{
		"PRIVICORE_AUTH_USER_FAILURES":     "ten",
		"PRIVICORE_AUTH_ADDR_WINDOW":       "1d",
		"PRIVICORE_AUTH_REGISTER_PER_ADDR": "x",
	})
	for _, name := range []string{"PRIVICORE_AUTH_USER_FAILURES", "PRIVICORE_AUTH_ADDR_WINDOW", "PRIVICORE_AUTH_REGISTER_PER_ADDR"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	err = serveErr(t, map[string]string{}, "--auth-user-addr-failures", "0", "--auth-user-window", "0s", "--auth-hash-concurrency", "-2")
	for _, name := range []string{"--auth-user-addr-failures", "--auth-user-window", "--auth-hash-concurrency"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}
