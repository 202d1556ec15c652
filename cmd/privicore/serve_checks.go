package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/httpapi"
)

// addLimitFlags adds the connection and body limit flags of serve.
func addLimitFlags(f *pflag.FlagSet, e *env, envErrs *[]error, l *engine.Limits) {
	f.IntVar(&l.MaxConns, "max-conns", envInt(e, envErrs, "PRIVICORE_MAX_CONNS", 0),
		"open API and WebSocket connections at most; 0: the file descriptor limit minus a reserve (a quarter, at least 128); -1: no cap (env PRIVICORE_MAX_CONNS)")
	f.IntVar(&l.MaxConnsPerAddr, "max-conns-per-addr", envInt(e, envErrs, "PRIVICORE_MAX_CONNS_PER_ADDR", 0),
		fmt.Sprintf("connections one client address may hold at once; 0: %d (at most half of --max-conns); -1: no cap, e.g. behind a reverse proxy (env PRIVICORE_MAX_CONNS_PER_ADDR)", engine.DefaultMaxConnsPerAddr))
	f.DurationVar(&l.Body.Timeout, "body-timeout", envDuration(e, envErrs, "PRIVICORE_BODY_TIMEOUT", httpapi.DefaultBodyTimeout),
		"a request body (streamed uploads aside) must arrive within this (env PRIVICORE_BODY_TIMEOUT)")
	f.Int64Var(&l.Body.MinRate, "body-min-rate", int64(envInt(e, envErrs, "PRIVICORE_BODY_MIN_RATE", httpapi.DefaultBodyMinRate)),
		fmt.Sprintf("bytes per second a request body must keep up, averaged over %v, streamed uploads too; a slower body is cut off with 408 (env PRIVICORE_BODY_MIN_RATE)", httpapi.DefaultBodyRateWindow))
}

// minLeaseTTL is the shortest --lease-ttl: its renewals, a third of it
// apart, must outlast a slow database round trip.
const minLeaseTTL = 3 * time.Second

// checkServeConfig refuses flag combinations serve would otherwise ignore
// or run badly with; calloutKey is the --nats-callout-key file.
func checkServeConfig(cfg engine.Config, calloutKey string) error {
	errs := []error{checkAuthFlags(&cfg)}
	if cfg.NATSURL == "" {
		for _, f := range [][2]string{{"--nats-callout-key", calloutKey}, {"--nats-system-url", cfg.NATSSystemURL}, {"--nats-account", cfg.NATSAccount}} {
			if f[1] != "" {
				errs = append(errs, fmt.Errorf("%s needs --nats-url: it configures an external NATS, and the embedded bus is in use", f[0]))
			}
		}
	} else if cfg.NATSAccount != "" && calloutKey == "" {
		errs = append(errs, errors.New("--nats-account needs --nats-callout-key: it is the account the auth callout places devices in"))
	}
	if cfg.MinAcks < 1 {
		errs = append(errs, fmt.Errorf("--min-acks must be at least 1 (got %d): an exchange needs a device that wrote it", cfg.MinAcks))
	}
	if cfg.LeaseTTL < minLeaseTTL {
		errs = append(errs, fmt.Errorf("--lease-ttl must be at least %v (got %v): a lease is renewed every third of it, and a replica that misses two renewals loses its work to another", minLeaseTTL, cfg.LeaseTTL))
	}
	if cfg.Limits.Body.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--body-timeout must be positive (got %v)", cfg.Limits.Body.Timeout))
	}
	if cfg.Limits.Body.MinRate < 1 {
		errs = append(errs, fmt.Errorf("--body-min-rate must be at least 1 byte per second (got %d)", cfg.Limits.Body.MinRate))
	}
	if cfg.Limits.MaxConns < -1 || cfg.Limits.MaxConnsPerAddr < -1 {
		errs = append(errs, errors.New("--max-conns and --max-conns-per-addr take a count, 0 for the default or -1 for none"))
	}
	return errors.Join(errs...)
}
