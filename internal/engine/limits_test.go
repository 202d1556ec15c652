package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/httpapi"
)

// guard bounds every wait: generous, never what a test measures.
const guard = 15 * time.Second

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: guard}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// health sends GET /health on c and returns the status, or an error when
// the connection ends without an answer.
func health(c net.Conn) (int, error) {
	c.SetDeadline(time.Now().Add(guard))
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// One address can hold at most its cap of connections: the next one is
// refused (429, closed) while another address (127.0.0.2) still gets
// /health answered; a connection given back frees its slot.
func TestPerAddressConnectionCap(t *testing.T) {
	const perAddr = 4
	e := enginetest.Start(t, func(c *engine.Config) { c.Limits.MaxConnsPerAddr = perAddr })
	addr := e.Addr()
	var held []net.Conn
	for range perAddr {
		c := dialFrom(t, "127.0.0.1", addr)
		if st, err := health(c); err != nil || st != http.StatusOK { // counted once served
			t.Fatalf("connection within the cap: %d %v", st, err)
		}
		held = append(held, c)
	}

	over := dialFrom(t, "127.0.0.1", addr)
	over.SetDeadline(time.Now().Add(guard))
	res, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("connection over the cap: no answer: %v", err)
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("connection over the cap: %d, want 429", res.StatusCode)
	}
	if _, err := over.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("connection over the cap still open: %v", err)
	}

	other := dialFrom(t, "127.0.0.2", addr)
	if st, err := health(other); err != nil || st != http.StatusOK {
		t.Fatalf("/health from another address while 127.0.0.1 holds its cap: %d %v", st, err)
	}

	held[0].Close()
	deadline := time.Now().Add(guard)
	for {
		c := dialFrom(t, "127.0.0.1", addr)
		st, err := health(c)
		if err == nil && st == http.StatusOK {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed connection was not given back: %d %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// A body trickling in slower than the minimum rate is cut off: 408 with
// errors.body, and the connection is closed, on a route that reads fields
// and on one that reads none.
func TestTricklingBodyIsDropped(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) {
		c.Limits.Body = httpapi.BodyLimits{MinRate: 1024, RateWindow: 300 * time.Millisecond}
	})
	for _, path := range []string{"/profile/register-profile", "/profile/revoke-authorization-token"} {
		c := dialFrom(t, "127.0.0.1", e.Addr())
		c.SetDeadline(time.Now().Add(guard))
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", path)
		stop := make(chan struct{})
		go func() { // one byte every 50 ms: 20 bytes/s, far below 1 KiB/s
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			close(stop)
			t.Fatalf("%s: no answer to a trickling body: %v", path, err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"body"`) {
			t.Errorf("%s: %d %s, want 408 with errors.body", path, res.StatusCode, b)
		}
		if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
			t.Errorf("%s: connection still open after the 408: %v", path, err)
		}
		close(stop)
	}
}

// Tight body limits leave ordinary traffic alone: a body sent at once is
// served as usual, and a WebSocket (a hijacked connection) keeps working
// long past every body deadline.
func TestLimitsLeaveNormalTrafficAlone(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) {
		c.Limits.Body = httpapi.BodyLimits{Timeout: 200 * time.Millisecond, MinRate: 1024, RateWindow: 200 * time.Millisecond}
		c.Limits.MaxConnsPerAddr = 8
	})
	res, err := http.Post(e.URL+"/profile/authenticate", "application/json", strings.NewReader(`{"username":"nobody-here","password":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("authenticate: %d, want 401", res.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.WSURL, &websocket.DialOptions{HTTPHeader: http.Header{"Content-Length": {"0"}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	time.Sleep(600 * time.Millisecond) // past every body deadline above
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"action":"joinChannel","data":{"authorizationToken":"T-nope","correlationId":"c"}}`)); err != nil {
		t.Fatalf("socket write after the body deadlines: %v", err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("socket read after the body deadlines: %v", err)
	}
}

// Request headers are bounded (64 KiB by default, not net/http's 1 MiB).
func TestOversizedHeadersAreRefused(t *testing.T) {
	e := enginetest.Start(t)
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/health", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 200<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("200 KiB of headers: %d, want 431", res.StatusCode)
	}
}
