package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/pgtest"
	"github.com/privicore/privicore/internal/sqlstore"
	"github.com/privicore/privicore/internal/syncbuf"
)

// binary is the privicore binary the process tests run: this test binary,
// which is privicore when asMainEnv is set (its children inherit it), so
// no second link of the whole program is needed.
var binary string

// asMainEnv makes this test binary run privicore's main instead of the tests.
const asMainEnv = "PRIVICORE_TEST_RUN_AS_PRIVICORE"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	var err error
	if binary, err = os.Executable(); err != nil {
		fmt.Fprintf(os.Stderr, "the test binary: %v\n", err)
		os.Exit(1)
	}
	os.Setenv(asMainEnv, "1")
	enginetest.OverlapWaits(4) // the process tests mostly wait on their processes
	pgtest.Main(m)             // runs the tests, then stops the PostgreSQL the cluster test started
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// engineProcess is `privicore serve` running as a real process.
type engineProcess struct {
	cmd  *exec.Cmd
	url  string
	out  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

// startServe runs the binary's serve command on dataDir and waits until it
// answers /health.
func startServe(t testing.TB, dataDir string) *engineProcess {
	t.Helper()
	return startServeBus(t, dataDir, freeAddr(t))
}

// startServeBus is startServe with the device bus at busAddr (devices keep
// their bundle's bus URL across engine restarts).
func startServeBus(t testing.TB, dataDir, busAddr string) *engineProcess {
	t.Helper()
	addr := freeAddr(t)
	os.Chmod(dataDir, 0o700) // the engine refuses a data dir others can read (t.TempDir is 0755)
	return runEngine(t, addr, "serve", "--addr", addr, "--ws-addr", "-", "--bus-addr", busAddr, "--data-dir", dataDir,
		"--auth-register-per-addr", "-1") // the load tests register many profiles from one address
}

// runEngine runs the binary with args (a serve listening on addr) and
// waits until it answers /health; it is killed when the test ends.
func runEngine(t testing.TB, addr string, args ...string) *engineProcess {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "PRIVICORE_LOG_LEVEL=debug")
	p := &engineProcess{cmd: cmd, url: "http://" + addr, out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(p.url + "/health"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited early:\n%s", p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not become healthy:\n%s", p.output())
	return nil
}

func (p *engineProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// post sends a JSON body and returns status and decoded body.
func post(url string, body any, token string) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-DPT-AUTHORIZATION", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m, nil
}

// commandStatus reads a command's status from the utility endpoint.
func commandStatus(t testing.TB, base, id string) (int, string) {
	t.Helper()
	res, err := http.Get(base + "/utility/request-command-id-status/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st struct {
		CommandStatus int `json:"command_status"`
		Body          string
	}
	json.NewDecoder(res.Body).Decode(&st)
	return st.CommandStatus, st.Body
}

const strongPassword = "Tr0ub4dor&3-correct-horse-battery"

// TestKill9LosesNoAcceptedCommand submits register-profile and key
// commands to a real engine process, kills it with SIGKILL under that load,
// restarts it on the same data dir and checks that every command that got a
// 202 completed, and every registration exactly once. (Commands caught in
// flight by the kill: TestStorageDevicesAsProcesses.)
func TestKill9LosesNoAcceptedCommand(t *testing.T) {
	t.Parallel() // processes (own data dir and ports): runs beside the others
	if testing.Short() {
		t.Skip("process test")
	}
	dataDir := t.TempDir()
	accepted := map[string]string{} // command id → username ("" for a key registration)
	var token string
	for round := range 2 {
		p := startServe(t, dataDir)
		if token == "" {
			// A profile whose key registrations queue up behind each other:
			// commands of one profile run in order, so most wait in line.
			status, body, _ := post(p.url+"/profile/register-profile", map[string]string{"username": "kill-owner", "password": strongPassword}, "")
			if status != 202 {
				t.Fatalf("register owner: %d", status)
			}
			for st, _ := commandStatus(t, p.url, body["commandId"].(string)); st != 2; st, _ = commandStatus(t, p.url, body["commandId"].(string)) {
				time.Sleep(10 * time.Millisecond)
			}
			_, auth, _ := post(p.url+"/profile/authenticate", map[string]string{"username": "kill-owner", "password": strongPassword}, "")
			token = auth["authorizationToken"].(string)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					var status int
					var body map[string]any
					var err error
					name := ""
					if w%2 == 0 {
						name = fmt.Sprintf("kill-%d-%d-%d", round, w, i)
						status, body, err = post(p.url+"/profile/register-profile", map[string]string{"username": name, "password": strongPassword}, "")
					} else {
						priv, _ := keys.Generate()
						status, body, err = post(p.url+"/public-key/register-public-key", map[string]string{"publicKey": keys.SignedPublic(priv)}, token)
					}
					if err != nil || status != http.StatusAccepted {
						return // the process is gone
					}
					mu.Lock()
					accepted[body["commandId"].(string)] = name
					mu.Unlock()
				}
			}()
		}
		time.Sleep(1500 * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		cancel()
		wg.Wait()

		// What did the kill leave behind? Read the database directly.
		db, err := sqlstore.OpenSQLite(filepath.Join(dataDir, "privicore.db"))
		if err != nil {
			t.Fatal(err)
		}
		var pending int
		if err := db.QueryRow(`SELECT COUNT(*) FROM commands WHERE status = 1`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		db.Close()
		t.Logf("round %d: %d commands accepted so far, %d pending at the kill", round, len(accepted), pending)
	}

	p := startServe(t, dataDir)
	deadline := time.Now().Add(30 * time.Second)
	for id, name := range accepted {
		for {
			st, body := commandStatus(t, p.url, id)
			if st == 2 {
				break
			}
			if st == 3 || st == 0 || time.Now().After(deadline) {
				t.Fatalf("command %s (%s): status %d %q after restart\n%s", id, name, st, body, p.output())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Exactly once: one profile per accepted registration, no more.
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	db, err := sqlstore.OpenSQLite(filepath.Join(dataDir, "privicore.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A command may be recorded and then the process killed before its 202
	// left: so compare with the recorded commands, which include the accepted.
	var profiles, commands, unfinished int
	db.QueryRow(`SELECT COUNT(*) FROM profiles`).Scan(&profiles)
	db.QueryRow(`SELECT COUNT(*) FROM commands WHERE type = 'profile.register'`).Scan(&commands)
	db.QueryRow(`SELECT COUNT(*) FROM commands WHERE status <> 2`).Scan(&unfinished)
	registrations := 0
	for _, name := range accepted {
		if name != "" {
			registrations++
		}
	}
	if profiles != commands || unfinished != 0 || commands < registrations {
		t.Fatalf("%d profiles for %d recorded registrations (%d accepted, %d unfinished)", profiles, commands, registrations, unfinished)
	}
	for _, name := range accepted {
		if name == "" {
			continue
		}
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM profiles WHERE username = ?`, name).Scan(&n)
		if n != 1 {
			t.Fatalf("accepted registration %s applied %d times", name, n)
		}
	}
}

// TestServeShutsDownGracefullyAndKeepsState stops the engine with SIGTERM and
// restarts it on the same data dir.
func TestServeShutsDownGracefullyAndKeepsState(t *testing.T) {
	dataDir := t.TempDir()
	p := startServe(t, dataDir)
	if !strings.Contains(p.output(), "API listening on http://") {
		t.Fatalf("serve does not say where it listens:\n%s", p.output())
	}
	status, body, err := post(p.url+"/profile/register-profile", map[string]string{"username": "graceful", "password": strongPassword}, "")
	if err != nil || status != 202 {
		t.Fatalf("register: %d %v", status, err)
	}
	id := body["commandId"].(string)
	for st, _ := commandStatus(t, p.url, id); st != 2; st, _ = commandStatus(t, p.url, id) {
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.output())
	}
	if !strings.Contains(p.output(), "stopped") {
		t.Fatalf("no shutdown message:\n%s", p.output())
	}
	p2 := startServe(t, dataDir)
	status, _, _ = post(p2.url+"/profile/authenticate", map[string]string{"username": "graceful", "password": strongPassword}, "")
	if status != 200 {
		t.Fatalf("authenticate after restart: %d", status)
	}
	// Nothing secret reached the log.
	for _, out := range []string{p.output(), p2.output()} {
		if strings.Contains(out, strongPassword) {
			t.Fatalf("a secret reached the log:\n%s", out)
		}
	}
}

// cli runs the privicore binary as a user would, with its own config dir.
func cli(t testing.TB, configDir, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "PRIVICORE_CONFIG_DIR="+configDir)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestNewUserWithTheBinary is the first ten minutes of a new user: start the
// engine, register, log in, make and register a key (whose ack arrives on
// the socket), ask who they are.
func TestNewUserWithTheBinary(t *testing.T) {
	p := startServe(t, t.TempDir())
	conf := t.TempDir()
	server := "--server=" + p.url

	out, err := cli(t, conf, strongPassword+"\n", "profile", "register", server, "--username", "newbie", "--password-stdin")
	if err != nil {
		t.Fatalf("profile register: %v\n%s", err, out)
	}
	out, err = cli(t, conf, strongPassword+"\n", "login", server, "--username", "newbie", "--password-stdin")
	if err != nil || !strings.Contains(out, "newbie") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(conf, "config.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	keyFile := filepath.Join(t.TempDir(), "newbie.key")
	out, err = cli(t, conf, "", "key", "generate", "--out", keyFile)
	if err != nil || len(strings.TrimSpace(out)) != 200 {
		t.Fatalf("key generate: %v\n%s", err, out)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	out, err = cli(t, conf, "", "key", "register", server, "--key", keyFile)
	if err != nil || !strings.Contains(out, "registered") {
		t.Fatalf("key register: %v\n%s", err, out)
	}
	out, err = cli(t, conf, "", "profile", "whoami", server)
	if err != nil || !strings.Contains(out, "newbie") {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	// The token is in the config file; it must never reach the engine's log.
	raw, _ := os.ReadFile(filepath.Join(conf, "config.json"))
	var saved struct{ Token string }
	json.Unmarshal(raw, &saved)
	if !strings.HasPrefix(saved.Token, "T-") {
		t.Fatalf("no token saved: %s", raw)
	}
	if log := p.output(); strings.Contains(log, saved.Token) || strings.Contains(log, strongPassword) {
		t.Fatalf("a secret reached the engine log:\n%s", log)
	}
	out, err = cli(t, conf, "", "profile", "logout", server)
	if err != nil {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if status, _, _ := post(p.url+"/profile/revoke-authorization-token", nil, saved.Token); status != 401 {
		t.Fatalf("token still alive after logout: %d", status)
	}
}

// TestServeTakesSettingsFromTheEnvironment runs `serve` in-process with
// every setting in PRIVICORE_* variables instead of flags.
func TestServeTakesSettingsFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{
		"PRIVICORE_ADDR":      addr,
		"PRIVICORE_WS_ADDR":   "-",
		"PRIVICORE_BUS_ADDR":  freeAddr(t),
		"PRIVICORE_DATA_DIR":  filepath.Join(dir, "data"),
		"PRIVICORE_DATABASE":  filepath.Join(dir, "elsewhere", "engine.db"),
		"PRIVICORE_TOKEN_TTL": "90s",
		// Finished commands are pruned at start (then hourly) once older.
		"PRIVICORE_COMMAND_RETENTION": "1ms",
	}
	serve := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var out syncbuf.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, io.Discard)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := http.Get("http://" + addr + "/health")
			if err == nil {
				res.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve did not listen on PRIVICORE_ADDR: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
		}
	}
	stop := serve()
	status, body, _ := post("http://"+addr+"/profile/register-profile", map[string]string{"username": "envuser", "password": strongPassword}, "")
	if status != 202 {
		t.Fatalf("register: %d", status)
	}
	for st, _ := commandStatus(t, "http://"+addr, body["commandId"].(string)); st != 2; st, _ = commandStatus(t, "http://"+addr, body["commandId"].(string)) {
		time.Sleep(10 * time.Millisecond)
	}
	_, tok, _ := post("http://"+addr+"/profile/authenticate", map[string]string{"username": "envuser", "password": strongPassword}, "")
	exp, _ := time.Parse(time.RFC3339, tok["expiresAt"].(string))
	if d := time.Until(exp); d > 91*time.Second || d < 60*time.Second {
		t.Fatalf("PRIVICORE_TOKEN_TTL ignored: token lives %v", d)
	}
	for _, f := range []string{filepath.Join(dir, "data", "engine.key"), filepath.Join(dir, "elsewhere", "engine.db")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	stop()

	// Started again: the registration's command is past the retention.
	stop = serve()
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for st, _ := commandStatus(t, "http://"+addr, body["commandId"].(string)); st != 0; st, _ = commandStatus(t, "http://"+addr, body["commandId"].(string)) {
		if time.Now().After(deadline) {
			t.Fatal("PRIVICORE_COMMAND_RETENTION ignored: the finished command was not pruned at start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A PRIVICORE_* value that does not parse stops serve before it starts: a
// retention of "90d" (not a Go duration) must not quietly become 30 days.
func TestServeRefusesBadEnvironmentValues(t *testing.T) {
	env := map[string]string{
		"PRIVICORE_ADDR": freeAddr(t), "PRIVICORE_WS_ADDR": "-", "PRIVICORE_BUS_ADDR": freeAddr(t),
		"PRIVICORE_DATA_DIR":          t.TempDir(),
		"PRIVICORE_COMMAND_RETENTION": "90d",
		"PRIVICORE_MIN_ACKS":          "two",
		"PRIVICORE_TOKEN_TTL":         "-1h",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve with bad settings: %v (ctx %v)", err, ctx.Err())
	}
	for _, name := range []string{"PRIVICORE_COMMAND_RETENTION", "PRIVICORE_MIN_ACKS", "PRIVICORE_TOKEN_TTL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}
