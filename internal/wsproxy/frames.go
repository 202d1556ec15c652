package wsproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
)

// The WebSocket library (github.com/coder/websocket) checks frames as it
// reads their payload: a frame whose header claims more than the read limit
// is refused only once that many bytes arrived (a header claiming 2^62
// bytes followed by silence leaves the socket open), and an unmasked client
// frame ends the read without a close frame. frameGuard sits between the
// TCP connection and the library and checks every client frame header as
// it goes by, so that both are refused at the header with the right code.

// Errors of the frame guard; the reader closes the socket with
// websocket.StatusProtocolError (1002) and StatusMessageTooBig (1009).
var (
	errUnmaskedFrame = errors.New("unmasked client frame")
	errFrameTooBig   = errors.New("frame larger than the message limit")
)

// guardedWriter hands the library a guarded connection when it hijacks the
// request's.
type guardedWriter struct {
	http.ResponseWriter
	limit int64 // largest data frame payload accepted
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *guardedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack implements http.Hijacker: the connection returned reads through a
// frameGuard, including what the server had already buffered.
func (w *guardedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var src io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc)
	}
	g := &guardedConn{Conn: nc, src: src, guard: frameGuard{limit: w.limit}}
	brw.Reader.Reset(g)
	return g, brw, nil
}

// guardedConn is a net.Conn whose reads pass a frameGuard.
type guardedConn struct {
	net.Conn
	src   io.Reader
	guard frameGuard
	err   error // sticky guard error
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.src.Read(p)
	if ok, gerr := c.guard.scan(p[:n]); gerr != nil {
		c.err = gerr
		return ok, gerr
	}
	return n, err
}

// frameGuard follows the client's frame boundaries (RFC 6455 §5.2) in the
// byte stream.
type frameGuard struct {
	limit     int64
	hdr       [14]byte // the header being read
	have      int      // bytes of hdr read
	lengthEnd int      // where the header's length field ends, known after its second byte
	length    uint64   // the payload length the header claims
	remaining uint64   // payload bytes of the current frame still to come
}

// payloadLength decodes the length field of hdr.
func (g *frameGuard) payloadLength() uint64 {
	switch l := g.hdr[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(g.hdr[2:4]))
	case 127:
		return binary.BigEndian.Uint64(g.hdr[2:10])
	default:
		return uint64(l)
	}
}

// scan inspects bytes just read. It returns how many of them may pass and,
// when a header it completes is refused, the error.
func (g *frameGuard) scan(p []byte) (int, error) {
	for i := 0; i < len(p); {
		if g.remaining > 0 {
			n := min(uint64(len(p)-i), g.remaining)
			g.remaining -= n
			i += int(n)
			continue
		}
		g.hdr[g.have] = p[i]
		g.have++
		if g.have == 2 {
			if g.hdr[1]&0x80 == 0 {
				return i, errUnmaskedFrame
			}
			switch g.hdr[1] & 0x7f {
			case 126:
				g.lengthEnd = 2 + 2
			case 127:
				g.lengthEnd = 2 + 8
			default:
				g.lengthEnd = 2
			}
		}
		// A refused header stops before its last length byte: the library
		// never sees a length it would act on.
		if g.have >= 2 && g.have == g.lengthEnd {
			g.length = g.payloadLength()
			// Data frames (continuation, text, binary; opcodes below 8) are
			// bounded by the message limit; the library bounds control frames.
			if g.hdr[0]&0x0f < 8 && g.length > uint64(g.limit) {
				return i, errFrameTooBig
			}
		}
		i++
		if g.have == g.lengthEnd+4 { // the mask key ends the header
			g.remaining, g.have, g.lengthEnd = g.length, 0, 0
		}
	}
	return len(p), nil
}
