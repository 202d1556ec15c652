// Command authbench measures an engine's password-check limits and the
// memory of concurrent registrations, from loopback addresses only
// (127.0.0.1 and 127.0.0.2…127.0.0.255, which the engine sees as distinct
// client addresses). It works against any engine build, so a build can be
// compared with an older one:
//
//	go run ./scripts/authbench -server http://127.0.0.1:18209 -mode logins -n 100
//	go run ./scripts/authbench -server … -mode guesses -n 10000 -addrs 50
//	go run ./scripts/authbench -server … -mode change-password -n 30
//	go run ./scripts/authbench -server … -mode register -n 100 -pid $(pgrep …)
//
// Each mode registers its own fresh profile (from 127.0.0.1) first, except
// register. It prints the HTTP statuses received: for authenticate a 401 is
// a password the engine checked, a 429 one it refused without checking; for
// change-password a 202 is a checked guess (rejected on its ack).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

const pw = "Authbench-Tr0ub4dor&3-horse"

func main() {
	server := flag.String("server", "http://127.0.0.1:8009", "engine API base URL (loopback)")
	mode := flag.String("mode", "logins", "logins | guesses | change-password | register")
	n := flag.Int("n", 100, "requests")
	addrs := flag.Int("addrs", 1, "guesses: client addresses 127.0.0.2 … (at most 250)")
	conc := flag.Int("c", 8, "guesses: concurrent clients; register: all n at once")
	pid := flag.Int("pid", 0, "register: the engine's process id, for its peak RSS (VmHWM)")
	flag.Parse()
	if *addrs < 1 || *addrs > 250 {
		fail("-addrs must be 1 to 250")
	}
	if !strings.HasPrefix(*server, "http://127.") && !strings.HasPrefix(*server, "http://localhost") {
		fail("-server must be a loopback URL")
	}
	b := &bench{url: strings.TrimRight(*server, "/"), counts: map[int]int{}}
	start := time.Now()
	switch *mode {
	case "logins":
		user := b.register(clientFrom("127.0.0.1"))
		c := clientFrom("127.0.0.1")
		for range *n {
			b.count(b.post(c, "/profile/authenticate", "", map[string]string{"username": user, "password": pw}))
		}
	case "guesses":
		user := b.register(clientFrom("127.0.0.1"))
		clients := make([]*http.Client, *addrs)
		for i := range clients {
			clients[i] = clientFrom(fmt.Sprintf("127.0.0.%d", 2+i))
		}
		b.parallel(*n, *conc, func(i int) {
			b.count(b.post(clients[i%len(clients)], "/profile/authenticate", "", map[string]string{"username": user, "password": fmt.Sprint("guess-", i, "-", pw)}))
		})
		// Then the owner, from an address that has not failed.
		st, _ := b.post(clientFrom("127.0.0.1"), "/profile/authenticate", "", map[string]string{"username": user, "password": pw})
		fmt.Printf("the owner's right password from 127.0.0.1 after the guesses: %d\n", st)
	case "change-password":
		c := clientFrom("127.0.0.1")
		user := b.register(c)
		tok := b.login(c, user)
		b.registerKey(c, tok)
		for i := range *n {
			b.count(b.post(c, "/profile/change-password", tok, map[string]string{"currentPassword": fmt.Sprint("guess-", i, "-", pw), "newPassword": "N3w-" + pw}))
		}
	case "register":
		before := vmHWM(*pid)
		c := clientFrom("127.0.0.1")
		var wg sync.WaitGroup
		for i := range *n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("authbench-reg-%d-%d", time.Now().UnixNano(), i)
				b.count(b.post(c, "/profile/register-profile", "", map[string]string{"username": name, "password": pw}))
			}()
		}
		wg.Wait()
		if *pid > 0 {
			fmt.Printf("engine VmHWM (peak RSS): before %s, after %s\n", before, vmHWM(*pid))
		}
	default:
		fail("unknown -mode " + *mode)
	}
	b.report(*mode, time.Since(start))
}

type bench struct {
	url    string
	mu     sync.Mutex
	counts map[int]int
}

// clientFrom is an HTTP client whose connections leave from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 128}}
}

func (b *bench) post(c *http.Client, path, token string, body any) (int, []byte) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-DPT-AUTHORIZATION", token)
	}
	res, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "authbench:", err)
		return 0, nil
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return res.StatusCode, rb
}

func (b *bench) count(status int, _ []byte) {
	b.mu.Lock()
	b.counts[status]++
	b.mu.Unlock()
}

// register makes a fresh profile and waits until it exists.
func (b *bench) register(c *http.Client) string {
	name := fmt.Sprintf("authbench-%d", time.Now().UnixNano())
	st, body := b.post(c, "/profile/register-profile", "", map[string]string{"username": name, "password": pw})
	if st != http.StatusAccepted {
		fail(fmt.Sprintf("register: %d %s", st, body))
	}
	var cmd struct{ CommandID string }
	_ = json.Unmarshal(body, &cmd)
	b.await(c, cmd.CommandID)
	return name
}

func (b *bench) login(c *http.Client, user string) string {
	st, body := b.post(c, "/profile/authenticate", "", map[string]string{"username": user, "password": pw})
	var tok struct{ AuthorizationToken string }
	if st != http.StatusOK || json.Unmarshal(body, &tok) != nil {
		fail(fmt.Sprintf("login: %d %s", st, body))
	}
	return tok.AuthorizationToken
}

// registerKey registers a public key (made by the engine's convenience
// endpoint) for the token's profile and waits for it.
func (b *bench) registerKey(c *http.Client, tok string) {
	res, err := c.Get(b.url + "/generate-keys")
	if err != nil {
		fail(err.Error())
	}
	var pair struct{ Public string }
	_ = json.NewDecoder(res.Body).Decode(&pair)
	res.Body.Close()
	st, body := b.post(c, "/public-key/register-public-key", tok, map[string]string{"publicKey": pair.Public})
	if st != http.StatusAccepted {
		fail(fmt.Sprintf("register key: %d %s", st, body))
	}
	var cmd struct{ CommandID string }
	_ = json.Unmarshal(body, &cmd)
	b.await(c, cmd.CommandID)
}

// await waits until command id succeeded.
func (b *bench) await(c *http.Client, id string) {
	for range 500 {
		res, err := c.Get(b.url + "/utility/request-command-id-status/" + id)
		if err == nil {
			var st struct {
				CommandStatus int `json:"command_status"`
			}
			_ = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if st.CommandStatus == 2 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail("command " + id + " did not succeed")
}

// parallel runs f(0…n-1) on conc workers.
func (b *bench) parallel(n, conc int, f func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (b *bench) report(mode string, d time.Duration) {
	var codes []int
	for c := range b.counts {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", b.counts[c], c))
	}
	fmt.Printf("%s: %s in %.1fs\n", mode, strings.Join(parts, " "), d.Seconds())
}

// vmHWM is the process's peak resident set size.
func vmHWM(pid int) string {
	if pid <= 0 {
		return "?"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "authbench:", msg)
	os.Exit(1)
}
