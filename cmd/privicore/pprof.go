package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
)

// startPprof serves the Go profiler on addr (loopback only is advised);
// "" does nothing.
func startPprof(e *env, addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go http.Serve(ln, mux)
	go func() { <-e.ctx.Done(); ln.Close() }()
	fmt.Fprintf(e.stdout, "privicore: profiler on http://%s/debug/pprof/\n", ln.Addr())
	return nil
}
