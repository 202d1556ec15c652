package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startDev runs `privicore dev` as a process and returns its output so far
// once it says it is running.
func startDev(t *testing.T, dataDir, addr, busAddr string) (stop func(), output func() string) {
	t.Helper()
	os.Chmod(dataDir, 0o700) // the engine refuses a data dir others can read (t.TempDir is 0755)
	cmd := exec.Command(binary, "dev", "--addr", addr, "--ws-addr", "-", "--bus-addr", busAddr, "--data-dir", dataDir)
	var mu sync.Mutex
	var out bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(done) }()
	output = func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	stop = func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(output(), "Ctrl-C stops everything") {
		if time.Now().After(deadline) {
			t.Fatalf("privicore dev did not start:\n%s", output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return stop, output
}

// TestDevRunsWhatItPrints: `privicore dev` provisions a demo profile with
// three storage devices, and the CLI commands it prints store and fetch a
// file; a second run reuses the same data.
func TestDevRunsWhatItPrints(t *testing.T) {
	t.Parallel() // a process (own data dir and ports): runs beside the others
	data, conf, work := t.TempDir(), t.TempDir(), t.TempDir()
	addr, busAddr := freeAddr(t), freeAddr(t)
	stop, output := startDev(t, data, addr, busAddr)
	login := regexp.MustCompile(`echo '([^']+)' \| privicore login --server (\S+) --username (\S+) --password-stdin`).FindStringSubmatch(output())
	if login == nil || !strings.Contains(output(), "3 storage devices") || !strings.Contains(output(), "curl -s -X POST "+login[2]+"/profile/authenticate") {
		t.Fatalf("dev output:\n%s", output())
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := cli(t, conf, stdin, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	run(login[1]+"\n", "login", "--server", login[2], "--username", login[3], "--password-stdin")
	hello := filepath.Join(work, "hello.txt")
	os.WriteFile(hello, []byte("hello from dev\n"), 0o600)
	dtk := regexp.MustCompile(`dtk-[A-Za-z0-9_-]+`).FindString(run("", "put", hello))
	if dtk == "" {
		t.Fatal("put printed no token")
	}
	copyPath := filepath.Join(work, "copy.txt")
	run("", "get", dtk, "-o", copyPath)
	if got, _ := os.ReadFile(copyPath); string(got) != "hello from dev\n" {
		t.Fatalf("get wrote %q", got)
	}
	if list := run("", "storage", "list"); strings.Count(list, "true") != 3 {
		t.Fatalf("storage list:\n%s", list)
	}
	stop()

	// Again on the same data: the same profile, devices and file.
	startDev(t, data, addr, busAddr)
	os.Remove(copyPath)
	run("", "get", dtk, "-o", copyPath)
	if got, _ := os.ReadFile(copyPath); string(got) != "hello from dev\n" {
		t.Fatalf("after a restart, get wrote %q", got)
	}
}
