package clientaddr

import (
	"net/http"
	"testing"
)

func TestOf(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: its header is ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted peer, one hop", "127.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted chain: the last untrusted hop", "10.1.2.3:5000", []string{"192.0.2.9, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"a spoofed left part does not count", "127.0.0.1:5000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"trusted peer without a header", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"only trusted hops", "127.0.0.1:5000", []string{"10.0.0.1"}, "10.0.0.1"},
		{"malformed hop: stops there", "127.0.0.1:5000", []string{"198.51.100.1, garbage"}, "127.0.0.1"},
		{"IPv4-mapped IPv6 peer", "[::ffff:127.0.0.1]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	} {
		req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := r.Of(req); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	var none *Resolver
	if got := none.Of(&http.Request{RemoteAddr: "127.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}); got != "127.0.0.1" {
		t.Errorf("no trusted proxies: %q, want the peer", got)
	}
	if _, err := New([]string{"not-an-address"}); err == nil {
		t.Error("a bad entry was accepted")
	}
}
