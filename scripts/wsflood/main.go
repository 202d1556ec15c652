// wsflood opens N WebSockets that never join a channel and reports how many
// the server accepted and how many are still open after a wait.
//
//	go run ./scripts/wsflood -addr 127.0.0.1:8083 -n 2000 -wait 15s -pid PID
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8083", "WebSocket proxy address")
	n := flag.Int("n", 2000, "sockets")
	wait := flag.Duration("wait", 15*time.Second, "how long to wait before counting open sockets")
	pid := flag.Int("pid", 0, "engine pid: report its RSS and open fds")
	flag.Parse()
	var accepted, refused, failed, open atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range *n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := net.DialTimeout("tcp", *addr, 5*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", *addr)
			br := bufio.NewReader(nc)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				failed.Add(1)
				nc.Close()
				return
			}
			if res.StatusCode != 101 {
				refused.Add(1)
				nc.Close()
				return
			}
			accepted.Add(1)
			open.Add(1)
			go func() { // read until the server ends it; answer a close frame
				defer open.Add(-1)
				defer nc.Close()
				var h [2]byte
				for {
					if _, err := io.ReadFull(br, h[:]); err != nil {
						return
					}
					l := int64(h[1] & 0x7f)
					if l >= 126 {
						return
					}
					body := make([]byte, l)
					io.ReadFull(br, body)
					if h[0]&0x0f == 8 {
						nc.Write([]byte{0x88, 0x82, 0, 0, 0, 0, body[0], body[1]})
					}
				}
			}()
		}()
	}
	wg.Wait()
	report := func(when string) {
		fmt.Printf("%-22s accepted %d, refused %d, failed %d, still open %d", when, accepted.Load(), refused.Load(), failed.Load(), open.Load())
		if *pid != 0 {
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
			rss := ""
			for _, line := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(line, "VmRSS:") {
					rss = strings.Join(strings.Fields(line)[1:], " ")
				}
			}
			fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", *pid))
			fmt.Printf("; engine RSS %s, fds %d", rss, len(fds))
		}
		fmt.Println()
	}
	report("after opening:")
	time.Sleep(*wait)
	report(fmt.Sprintf("after %s:", *wait))
}
