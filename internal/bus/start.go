package bus

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// How long the embedded server may take to start, and how often start-up
// is checked for a failure.
const (
	startTimeout = 10 * time.Second
	startPoll    = 50 * time.Millisecond
)

// startServer starts srv and waits until it takes connections. A server
// that cannot start (its port taken, JetStream's directory unusable) says
// so at once, in an error naming the address and the cause.
func startServer(srv *server.Server, addr string, log *slog.Logger) error {
	fatal := make(chan string, 1)
	srv.SetLoggerV2(&serverLog{log: log, fatal: fatal}, false, false, false)
	go srv.Start()
	deadline := time.Now().Add(startTimeout)
	for !srv.ReadyForConnections(startPoll) {
		select {
		case msg := <-fatal:
			srv.Shutdown()
			return fmt.Errorf("bus: the embedded NATS server cannot start on %s: %s", addr, msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return fmt.Errorf("bus: the embedded NATS server did not start on %s within %v", addr, startTimeout)
		}
	}
	return nil
}

// serverLog is the embedded server's logger: its fatal errors (which end
// its start) are reported to startServer and logged; errors and warnings
// are logged at debug level (a device's failed login is one); the rest is
// dropped.
type serverLog struct {
	log   *slog.Logger
	fatal chan string
}

func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("embedded NATS server", "err", msg)
	select {
	case l.fatal <- msg:
	default:
	}
}

func (l *serverLog) Errorf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("embedded NATS server", "err", fmt.Sprintf(format, v...))
	}
}

func (l *serverLog) Warnf(format string, v ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("embedded NATS server", "warning", fmt.Sprintf(format, v...))
	}
}

func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}

// storeDirMode is the mode of JetStream's directory (the server would
// create it 0750).
const storeDirMode = 0o700

// privateStoreDir creates JetStream's directory dir with storeDirMode, or
// narrows an existing one to it; "" is the server's temporary directory.
func privateStoreDir(dir string) error {
	if dir == "" || runtime.GOOS == "windows" {
		return nil
	}
	if err := os.MkdirAll(dir, storeDirMode); err != nil {
		return fmt.Errorf("bus: JetStream directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("bus: JetStream directory: %w", err)
	}
	if st.Mode().Perm()&^storeDirMode != 0 {
		if err := os.Chmod(dir, storeDirMode); err != nil {
			return fmt.Errorf("bus: JetStream directory %s is mode %04o and cannot be narrowed to %04o: %w", dir, st.Mode().Perm(), storeDirMode, err)
		}
	}
	return nil
}
