package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/privicore/privicore/internal/command"
)

// holdAcks makes every event of the commands a request submits (their
// acks, a data request's answer) wait until the request's 202 has been
// written and flushed to the connection: a client may start listening for
// a command's ack only when it reads the 202 (the reference deployment's
// clients do), and must not find the ack gone by, nor see it before the
// 202 it belongs to. A request that ends without a 202 releases the events
// when its handler returns. WebSocket upgrades pass through untouched.
func holdAcks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		ctx, hold := command.WithHold(r.Context())
		aw := &acceptedWriter{ResponseWriter: w}
		defer func() {
			aw.finish()
			hold.Release()
		}()
		next.ServeHTTP(aw, r.WithContext(ctx))
	})
}

// acceptedWriter keeps a 202 answer back until the handler returns, then
// writes it with its Content-Length and flushes it, so that the whole
// answer is on the connection before any event it announces is published
// (flushing a response of unknown length would leave its end, the final
// chunk, for after). Every other status passes straight through.
type acceptedWriter struct {
	http.ResponseWriter
	status int    // the status written, 0 until then
	held   []byte // the 202's body, while held
}

// WriteHeader holds a 202 and passes any other status on.
func (a *acceptedWriter) WriteHeader(code int) {
	if a.status != 0 {
		return
	}
	a.status = code
	if code != http.StatusAccepted {
		a.ResponseWriter.WriteHeader(code)
	}
}

// Write adds to a held 202's body, or writes through.
func (a *acceptedWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.status == http.StatusAccepted {
		a.held = append(a.held, b...)
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (a *acceptedWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// finish writes and flushes a held 202.
func (a *acceptedWriter) finish() {
	if a.status != http.StatusAccepted {
		return
	}
	a.ResponseWriter.Header().Set("Content-Length", strconv.Itoa(len(a.held)))
	a.ResponseWriter.WriteHeader(http.StatusAccepted)
	if _, err := a.ResponseWriter.Write(a.held); err != nil {
		return // the client is gone; its events are released all the same
	}
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}
