package httpapi

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Default body limits (BodyLimits).
const (
	// DefaultBodyTimeout bounds the whole body of a request other than a
	// streamed upload.
	DefaultBodyTimeout = 60 * time.Second
	// DefaultBodyMinRate is the slowest a body may arrive, in bytes per
	// second averaged over DefaultBodyRateWindow (10 KiB per 10 s): a
	// client trickling a byte every few seconds is cut off, a slow link is
	// not.
	DefaultBodyMinRate = 1024
	// DefaultBodyRateWindow is the window DefaultBodyMinRate is measured over.
	DefaultBodyRateWindow = 10 * time.Second
)

// BodyLimits bound how long a request body may take, so that slow or
// stalled clients cannot hold connections. Every body must show progress:
// at least MinRate×RateWindow bytes in every RateWindow spent waiting for
// it (time the handler spends elsewhere, e.g. writing a streamed chunk to
// the devices, does not count). Bodies other than streamed uploads
// (POST /upstream/, which legitimately take long) must also be complete
// within Timeout. A body that breaks either rule ends the request: 408 with
// errors.body, and the connection is closed.
type BodyLimits struct {
	Timeout    time.Duration // default DefaultBodyTimeout
	MinRate    int64         // bytes per second; default DefaultBodyMinRate
	RateWindow time.Duration // default DefaultBodyRateWindow
}

func (l BodyLimits) withDefaults() BodyLimits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultBodyTimeout
	}
	if l.MinRate <= 0 {
		l.MinRate = DefaultBodyMinRate
	}
	if l.RateWindow <= 0 {
		l.RateWindow = DefaultBodyRateWindow
	}
	return l
}

// streamedBodies are the routes whose bodies are streamed: no overall
// deadline, only the progress rule.
var streamedBodies = map[string]bool{"POST /upstream/": true}

// errSlowBody is what a body read returns once a limit is broken.
var errSlowBody = errors.New("the request body did not arrive in time")

// limitBody puts r's body (if it has one) under the limits. The connection's
// read deadline is set at once too, so that a body the handler never reads
// cannot hold the connection while the server discards it afterwards.
func limitBody(w http.ResponseWriter, r *http.Request, l BodyLimits, streamed bool) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		// No body: the server is already watching the connection for
		// the client going away; a read deadline would cancel the request.
		return
	}
	b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), header: w.Header(),
		window: l.RateWindow, minBytes: max(1, l.MinRate*int64(l.RateWindow)/int64(time.Second)), budget: l.RateWindow}
	if !streamed {
		b.overall = time.Now().Add(l.Timeout)
	}
	_ = b.rc.SetReadDeadline(b.deadline(time.Now()))
	r.Body = b
}

// deadlineBody enforces BodyLimits on a request body through the
// connection's read deadline, reset before every read.
type deadlineBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	header   http.Header
	overall  time.Time     // zero for a streamed body
	window   time.Duration // the progress window
	minBytes int64         // bytes due in every window
	budget   time.Duration // waiting time left in the current window
	got      int64         // bytes received in the current window
	done     bool          // the body ended (or failed): limits no longer apply
}

func (b *deadlineBody) deadline(now time.Time) time.Time {
	d := now.Add(b.budget)
	if !b.overall.IsZero() && b.overall.Before(d) {
		d = b.overall
	}
	return d
}

// Read reads with the deadline the limits leave. At the end of the body it
// clears the deadline: from then on the server reads the connection in the
// background to notice a client going away, and a deadline firing there
// would cancel the request while the handler still works on it.
func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	start := time.Now()
	_ = b.rc.SetReadDeadline(b.deadline(start))
	n, err := b.body.Read(p)
	if b.got += int64(n); b.got >= b.minBytes {
		b.got, b.budget = 0, b.window
	} else {
		b.budget -= time.Since(start)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case isTimeout(err):
		b.done = true
		b.header.Set("Connection", "close")
		err = errSlowBody
	}
	return n, err
}

// Close closes the body.
func (b *deadlineBody) Close() error { return b.body.Close() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
