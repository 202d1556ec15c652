package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
)

// startDevice runs `privicore storage-device` as a real process.
func startDevice(t *testing.T, bundle, key, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "storage-device", "--config", bundle, "--key", key, "--dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestStorageDevicesAsProcesses enrolls three storage devices with the CLI,
// runs them as processes, stores and fetches a file with put/get, and kills
// one device with SIGKILL during a load of stores: restarted, it ends up
// with every blob.
func TestStorageDevicesAsProcesses(t *testing.T) {
	t.Parallel() // processes (own data dirs and ports): runs beside the others
	if testing.Short() {
		t.Skip("process test")
	}
	dataDir, busAddr := t.TempDir(), freeAddr(t)
	p := startServeBus(t, dataDir, busAddr)
	conf, work := t.TempDir(), t.TempDir()
	server := "--server=" + p.url
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := cli(t, conf, stdin, args...)
		if err != nil {
			t.Fatalf("privicore %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run(strongPassword+"\n", "profile", "register", server, "--username", "owner", "--password-stdin")
	run(strongPassword+"\n", "login", server, "--username", "owner", "--password-stdin")
	run("", "key", "generate", "--out", filepath.Join(work, "owner.key"))
	run("", "key", "register", "--key", filepath.Join(work, "owner.key"))

	type dev struct{ bundle, key, dir string }
	var devs []dev
	for i := range 3 {
		d := dev{filepath.Join(work, fmt.Sprintf("b%d.json", i)), filepath.Join(work, fmt.Sprintf("d%d.key", i)), filepath.Join(work, fmt.Sprintf("s%d", i))}
		run("", "device", "enroll", "--role", "storage", "--approve", "--name", fmt.Sprintf("s%d", i), "--key-out", d.key, "--bundle-out", d.bundle)
		devs = append(devs, d)
	}
	procs := make([]*exec.Cmd, 3)
	for i, d := range devs {
		procs[i] = startDevice(t, d.bundle, d.key, d.dir)
	}
	waitOnline(t, conf, 3)

	file := filepath.Join(work, "hello.txt")
	os.WriteFile(file, []byte("hello, vault"), 0o600)
	dtk := strings.TrimSpace(run("", "put", file))
	if !strings.HasPrefix(dtk, "dtk-") {
		t.Fatalf("put printed %q", dtk)
	}
	got := filepath.Join(work, "got.txt")
	run("", "get", dtk, "-o", got)
	if b, _ := os.ReadFile(got); string(b) != "hello, vault" {
		t.Fatalf("get wrote %q", b)
	}
	if out := run("", "tokens", "list"); !strings.Contains(out, dtk) {
		t.Fatalf("tokens list:\n%s", out)
	}

	// A load of stores with device 1 killed and restarted in the middle.
	ctx := context.Background()
	s, err := client.Login(ctx, p.url, "owner", strongPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := client.NewDataKey()
	const total = 60
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / 6 {
				if _, err := s.Store(ctx, key, []byte(fmt.Sprintf("payload %d-%d", w, i)), client.FileMeta{FileName: "x"}); err != nil {
					errs <- err
				}
				if w == 0 && i == 3 {
					procs[1].Process.Signal(syscall.SIGKILL)
					procs[1].Wait()
				}
				if w == 0 && i == 6 {
					procs[1] = startDevice(t, devs[1].bundle, devs[1].key, devs[1].dir)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("store during the kill: %v", err)
	}
	// Every device, the killed one included, ends up with every blob.
	deadline := time.Now().Add(30 * time.Second)
	for {
		held, _ := storagedevice.Holdings(devs[1].dir)
		n := len(held)
		if n == total+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted device holds %d blobs, want %d", n, total+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, d := range []dev{devs[0], devs[2]} {
		if held, _ := storagedevice.Holdings(d.dir); len(held) != total+1 {
			t.Fatalf("device %s holds %d blobs", d.dir, len(held))
		}
	}
	s.Close()

	// The engine killed with exchanges in flight: none that got its 202 is
	// lost. An exchange runs inline, its 202 sent once its outcome is
	// durable, so each of them has its outcome after the restart (one that
	// took the queued path completes or is rejected storage.write_failed:
	// TestExchangeWhosePayloadWasLostIsRejected); the ones cut off before
	// their 202 never existed.
	var temps []string
	for range 200 {
		id, err := s.Reserve(ctx, "kill", 60)
		if err != nil {
			t.Fatal(err)
		}
		rsv, err := s.TemporaryToken(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		temps = append(temps, rsv.Token)
	}
	var mu sync.Mutex
	var exchanges []string
	var outstanding, cutOff int // requests sent and not answered; at the kill
	next := 0
	load, stop := context.WithCancel(ctx)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for load.Err() == nil {
				mu.Lock()
				if next == len(temps) {
					mu.Unlock()
					return
				}
				tmp := temps[next]
				next++
				outstanding++
				mu.Unlock()
				id, err := s.Exchange(load, tmp, make([]byte, 512))
				mu.Lock()
				outstanding--
				if err != nil {
					mu.Unlock()
					return
				}
				exchanges = append(exchanges, id)
				if len(exchanges) == 60 {
					cutOff = outstanding
					p.cmd.Process.Signal(syscall.SIGKILL) // mid-load
				}
				mu.Unlock()
			}
		}()
	}
	<-p.done
	stop()
	wg.Wait()
	t.Logf("%d exchanges accepted, %d in flight at the kill", len(exchanges), cutOff)
	if cutOff == 0 {
		t.Fatal("no exchange was in flight at the kill; the test proved nothing")
	}
	p = startServeBus(t, dataDir, busAddr)
	deadline = time.Now().Add(30 * time.Second)
	outcomes := map[string]int{}
	for _, id := range exchanges {
		for {
			st, body := commandStatus(t, p.url, id)
			if st == 2 || (st == 3 && body == "storage.write_failed") {
				outcomes[fmt.Sprint(st)]++
				break
			}
			if st != 1 || time.Now().After(deadline) {
				t.Fatalf("exchange %s after the restart: %d %q", id, st, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("after the restart: %d completed, %d rejected", outcomes["2"], outcomes["3"])
}

// waitOnline waits until n storage devices are online.
func waitOnline(t *testing.T, conf string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := cli(t, conf, "", "storage", "list")
		if strings.Count(out, " true ") >= n || strings.Count(out, "true") >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := cli(t, conf, "", "storage", "list")
	t.Fatalf("storage devices not online:\n%s", out)
}
