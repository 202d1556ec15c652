// Command slowclients measures how an engine copes with slow and idle
// clients (issue #12, B.5):
//
//	slowclients -addr 127.0.0.1:8009 -mode trickle -n 200 -every 4s -after 24s
//	slowclients -addr 127.0.0.1:8009 -mode idle -n 578
//
// trickle opens n POSTs that send their body one byte every -every and
// reports, after -after, how many connections the engine still holds
// (open, unanswered). idle opens n connections from 127.0.0.1 that send
// nothing, then asks GET /health from 127.0.0.1 and from 127.0.0.2.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8009", "the engine's API address")
	mode := flag.String("mode", "trickle", "trickle or idle")
	n := flag.Int("n", 200, "connections")
	every := flag.Duration("every", 4*time.Second, "trickle: one body byte this often")
	after := flag.Duration("after", 24*time.Second, "trickle: count held connections after this")
	flag.Parse()
	switch *mode {
	case "trickle":
		trickle(*addr, *n, *every, *after)
	case "idle":
		idle(*addr, *n)
	default:
		fmt.Fprintln(os.Stderr, "slowclients: -mode trickle or idle")
		os.Exit(2)
	}
}

func trickle(addr string, n int, every, after time.Duration) {
	var opened, refused, answered, closed atomic.Int64
	statuses := sync.Map{}
	var wg sync.WaitGroup
	held := make([]atomic.Bool, n)
	for i := range n {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				refused.Add(1)
				return
			}
			defer c.Close()
			opened.Add(1)
			held[i].Store(true)
			defer held[i].Store(false)
			fmt.Fprintf(c, "POST /profile/register-profile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			go func() {
				for t := time.NewTicker(every); ; <-t.C {
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(after + 5*time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return // still held at the end
				}
				closed.Add(1)
				return
			}
			answered.Add(1)
			v, _ := statuses.LoadOrStore(res.StatusCode, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			io.Copy(io.Discard, res.Body)
		}(i)
	}
	time.Sleep(after)
	still := 0
	for i := range held {
		if held[i].Load() {
			still++
		}
	}
	fmt.Printf("trickle: %d POSTs (1 byte per %v): after %v %d still held; %d answered, %d closed without an answer, %d refused at connect\n",
		n, every, after, still, answered.Load(), closed.Load(), refused.Load())
	statuses.Range(func(k, v any) bool {
		fmt.Printf("  status %v: %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
	os.Exit(0)
}

func idle(addr string, n int) {
	var conns []net.Conn
	failed := 0
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			failed++
			continue
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // let the engine accept (or refuse) them
	fmt.Printf("idle: %d connections from 127.0.0.1 (%d failed to connect)\n", n, failed)
	for _, src := range []string{"127.0.0.2", "127.0.0.1"} {
		start := time.Now()
		st, err := health(addr, src)
		fmt.Printf("  GET /health from %s: %v %v (%v)\n", src, st, err, time.Since(start).Round(time.Millisecond))
	}
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open++
			}
		}
	}
	fmt.Printf("  then: %d of them still open, %d refused or closed\n", open, len(conns)-open)
	for _, c := range conns {
		c.Close()
	}
}

func health(addr, src string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}
