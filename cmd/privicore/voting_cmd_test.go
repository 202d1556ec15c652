package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/syncbuf"
)

// activeCLIUser registers username with the CLI against url, logs in and
// registers a key (kept in dir), with its CLI configuration in conf; it
// returns a runner of CLI commands as that user that fails the test on an
// error and returns the output.
func activeCLIUser(t *testing.T, url, conf, dir, username string) func(args ...string) string {
	t.Helper()
	must := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, conf, strongPassword+"\n", args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	must("profile", "register", "--server="+url, "--username", username, "--password-stdin")
	must("login", "--server="+url, "--username", username, "--password-stdin")
	must("key", "generate", "--out", filepath.Join(dir, "owner.key"))
	must("key", "register", "--key", filepath.Join(dir, "owner.key"))
	return must
}

// TestVotingCommands: an authenticator enrolled and run with the CLI
// answers a vote opened with the CLI; policies are managed with it.
func TestVotingCommands(t *testing.T) {
	e := enginetest.Start(t)
	conf, dir := t.TempDir(), t.TempDir()
	must := activeCLIUser(t, e.URL, conf, dir, "voting-cli")
	must("device", "enroll", "--role", "authenticator", "--approve", "--name", "phone",
		"--key-out", filepath.Join(dir, "a.key"), "--bundle-out", filepath.Join(dir, "a.json"))
	if out := must("authenticator", "list"); !strings.Contains(out, "phone") || !strings.Contains(out, "authenticator") {
		t.Fatalf("authenticator list:\n%s", out)
	}

	// The device, answering yes to everything.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var devOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		env := map[string]string{"PRIVICORE_CONFIG_DIR": conf}
		done <- run(ctx, []string{"authenticator", "--config", filepath.Join(dir, "a.json"), "--key", filepath.Join(dir, "a.key"), "--approve-all"},
			func(k string) string { return env[k] }, strings.NewReader(""), &devOut, &devOut)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(devOut.String(), "waiting for ballots") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	if out := must("voting-config", "strategy"); !strings.Contains(out, "strategy unanimous (100%), quorum 1, time limit 60s, attempts 1") {
		t.Fatalf("strategy: %s", out)
	}
	must("voting-config", "strategy", "--time-limit", "2m", "--attempts", "2")
	must("voting-config", "register", "--name", "everyone", "--strategy", "consensus")
	if out := must("voting-config", "list"); !strings.Contains(out, "everyone") || !strings.Contains(out, "consensus") {
		t.Fatalf("voting-config list:\n%s", out)
	}
	out := must("vote", "create", "Deploy on Friday?", "--voting-config", "everyone", "--title", "Release", "--wait")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[1] != "approved" {
		t.Fatalf("vote create --wait:\n%s", out)
	}
	if st := must("vote", "status", lines[0]); !strings.Contains(st, "approved") || !strings.Contains(st, "1 of 1 answered") {
		t.Fatalf("vote status:\n%s", st)
	}
	if !strings.Contains(devOut.String(), "Deploy on Friday?") || !strings.Contains(devOut.String(), "answered yes: accepted") {
		t.Fatalf("the authenticator's terminal:\n%s", devOut.String())
	}

	if out := must("policy", "templates"); !strings.Contains(out, "data-protection") || !strings.Contains(out, "data-token.delete") {
		t.Fatalf("templates:\n%s", out)
	}
	id := strings.TrimSpace(must("policy", "register", "--name", "guard", "--template", "data-protection", "--event", "dt-delete", "--message", "Delete?",
		"--set", "classification=secret", "--set", "label=L1"))
	if out := must("policy", "show", "guard"); !strings.Contains(out, `"classification": "secret"`) || !strings.Contains(out, `"label": "L1"`) ||
		!strings.Contains(out, `"ballotMessage": "Delete?"`) || !strings.Contains(out, id) {
		t.Fatalf("policy show:\n%s", out)
	}
	must("policy", "activate", "guard")
	if out := must("policy", "list", "--show", "active"); !strings.Contains(out, id) || !strings.Contains(out, "data-token.delete") {
		t.Fatalf("active policies:\n%s", out)
	}
	must("policy", "deactivate", id)
	must("policy", "delete", id)
	if out := must("policy", "list"); strings.Contains(out, id) {
		t.Fatalf("deleted policy listed:\n%s", out)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("authenticator: %v", err)
	}
}
