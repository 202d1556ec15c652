package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/syncbuf"
)

// TestGetEndsWhenTheVoteFails: with a policy gating reads, an
// authenticator that never answers and a 5 s voting time limit, `privicore
// get` says on stderr that it waits for a vote (pool, deadline) and ends
// with the rejection voting.expired, not at its own 5-minute timeout.
func TestGetEndsWhenTheVoteFails(t *testing.T) {
	t.Parallel() // waits 5 s for the vote to expire: runs beside the others
	e := enginetest.Start(t)
	conf, work := t.TempDir(), t.TempDir()
	must := activeCLIUser(t, e.URL, conf, work, "get-vote")
	must("device", "enroll", "--role", "storage", "--approve", "--name", "s1",
		"--key-out", filepath.Join(work, "s1.key"), "--bundle-out", filepath.Join(work, "s1.json"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var devOut syncbuf.Buffer
	devDone := make(chan error, 1)
	go func() {
		env := map[string]string{"PRIVICORE_CONFIG_DIR": conf}
		devDone <- run(ctx, []string{"storage-device", "--config", filepath.Join(work, "s1.json"), "--key", filepath.Join(work, "s1.key"),
			"--dir", filepath.Join(work, "s1")}, func(k string) string { return env[k] }, strings.NewReader(""), &devOut, &devOut)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(must("storage", "list"), "true") {
		if time.Now().After(deadline) {
			t.Fatalf("the storage device is not online:\n%s", devOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// An authenticator that is never started: nobody answers.
	must("device", "enroll", "--role", "authenticator", "--approve", "--name", "phone",
		"--key-out", filepath.Join(work, "a.key"), "--bundle-out", filepath.Join(work, "a.json"))
	file := filepath.Join(work, "secret.txt")
	os.WriteFile(file, []byte("gated"), 0o600)
	dtk := strings.TrimSpace(must("put", file))
	must("voting-config", "strategy", "--time-limit", "5s")
	must("policy", "register", "--name", "reads", "--template", "data-protection", "--event", "dt-request")
	must("policy", "activate", "reads")

	var stdout, stderr syncbuf.Buffer
	got := filepath.Join(work, "got.txt")
	env := map[string]string{"PRIVICORE_CONFIG_DIR": conf}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"get", dtk, "-o", got}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(90 * time.Second): // a guard: the vote ends after 5 s
		t.Fatalf("get still waiting; stderr:\n%s", stderr.String())
	}
	if err == nil || !strings.Contains(err.Error(), "voting.expired") {
		t.Fatalf("get: %v, want the rejection voting.expired; stderr:\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`waiting for a vote: pool ([0-9a-f-]{36}), until (\S+)\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("stderr does not say it waits for a vote:\n%s", stderr.String())
	}
	if _, err := time.Parse(time.RFC3339, m[2]); err != nil {
		t.Fatalf("deadline %q: %v", m[2], err)
	}
	if st := must("vote", "status", m[1]); !strings.Contains(st, "expired") {
		t.Fatalf("vote status of the announced pool:\n%s", st)
	}
	if !strings.Contains(stderr.String(), "the vote on pool "+m[1]+" ended: expired") {
		t.Fatalf("stderr does not say how the vote ended:\n%s", stderr.String())
	}
	if _, err := os.Stat(got); !os.IsNotExist(err) {
		t.Fatalf("get wrote %s after a rejection: %v", got, err)
	}
	stop()
	if err := <-devDone; err != nil {
		t.Fatalf("storage device: %v", err)
	}
}

// TestVoteWatchNamesTheOpenVote: a wait that runs out of the CLI's time
// while a vote is open says which vote it left; one whose vote ended, or
// that failed otherwise, keeps its error as is.
func TestVoteWatchNamesTheOpenVote(t *testing.T) {
	var stderr syncbuf.Buffer
	e := &env{stderr: &stderr}
	w := watchVotes(e)
	until := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	opened := client.PoolEvent{Type: client.EventPoolOpened, PoolID: "p-1", CommandID: "c-1", Attempt: 2, ExpiresAt: until}
	w.seen(opened)
	if !strings.Contains(stderr.String(), "waiting for a vote: pool p-1 (attempt 2), until ") {
		t.Fatalf("stderr %q", stderr.String())
	}
	err := w.explain(fmt.Errorf("await: %w", context.DeadlineExceeded))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "vote on pool p-1") {
		t.Fatalf("explained %v", err)
	}
	other := errors.New("boom")
	if w.explain(other) != other {
		t.Fatal("another error was changed")
	}
	w.seen(client.PoolEvent{Type: client.EventPoolResolved, PoolID: "p-1", CommandID: "c-1", State: "rejected"})
	if err := w.explain(context.DeadlineExceeded); err != context.DeadlineExceeded {
		t.Fatalf("after the vote ended: %v", err)
	}
}
