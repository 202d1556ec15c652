package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/keyring"
	"github.com/privicore/privicore/internal/wsproxy"
)

// newServeCmd is `privicore serve`: the engine. Every flag can also be set
// by a PRIVICORE_* environment variable (flag wins).
func newServeCmd(e *env) *cobra.Command {
	var cfg engine.Config
	var pprofAddr string
	var logLevel string
	var calloutKey string
	var kekFile string
	var envErrs []error // PRIVICORE_* values that do not parse: serve refuses to start
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine (HTTP API, WebSocket channel proxy, command processor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(envErrs...); err != nil {
				return err
			}
			if err := checkServeConfig(cfg, calloutKey); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = newLogger(e, logLevel)
			if cfg.WSJoinTimeout == 0 { // 0 on the command line: no deadline
				cfg.WSJoinTimeout = -1
			}
			if cfg.WSMaxConnsPerAddr <= 0 { // 0: no limit
				cfg.WSMaxConnsPerAddr = -1
			}
			if calloutKey != "" {
				seed, err := os.ReadFile(calloutKey)
				if err != nil {
					return fmt.Errorf("--nats-callout-key: %w", err)
				}
				cfg.NATSCalloutSeed = strings.TrimSpace(string(seed))
			}
			if kekFile != "" {
				kek, err := keyring.ReadKEKFile(kekFile)
				if err != nil {
					return fmt.Errorf("--kek-file: %w", err)
				}
				cfg.KEK = kek
			}
			eng, err := startEngine(e, cfg, pprofAddr)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "privicore: API listening on http://%s (WebSocket proxy at ws://%s/ws)\n", eng.Addr(), eng.Addr())
			if ws := eng.WSAddr(); ws != "" {
				fmt.Fprintf(e.stdout, "privicore: WebSocket proxy listening on ws://%s/\n", ws)
			}
			fmt.Fprintf(e.stdout, "privicore: device bus at %s\n", eng.Bus.URL())
			fmt.Fprintf(e.stdout, "privicore: data in %s\n", cfg.DataDir)
			err = eng.Serve(e.ctx)
			fmt.Fprintln(e.stdout, "privicore: stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&pprofAddr, "pprof-addr", "", "serve the Go profiler here (e.g. 127.0.0.1:6060); off by default")
	f.StringVar(&cfg.Addr, "addr", envOr(e, "PRIVICORE_ADDR", engine.DefaultAddr), "API listen address (env PRIVICORE_ADDR)")
	f.StringVar(&cfg.WSAddr, "ws-addr", envOr(e, "PRIVICORE_WS_ADDR", engine.DefaultWSAddr), `WebSocket proxy listen address, "-" for none; it is also at /ws on --addr (env PRIVICORE_WS_ADDR)`)
	f.StringVar(&cfg.DataDir, "data-dir", envOr(e, "PRIVICORE_DATA_DIR", engine.DefaultDataDir), "directory for the database and key files (env PRIVICORE_DATA_DIR)")
	f.StringVar(&cfg.Database, "database", envOr(e, "PRIVICORE_DATABASE", ""), "database: a SQLite file path (default privicore.db in --data-dir) or a postgres:// URL (env PRIVICORE_DATABASE)")
	f.StringVar(&kekFile, "kek-file", envOr(e, "PRIVICORE_KEK_FILE", ""), "a file holding the key-encryption key (make one with `privicore kek generate FILE`): the engine key and the master key are then kept in the database, sealed under it; "+
		"required with PostgreSQL, every replica given the same file; optional with SQLite, where the keys are otherwise files in --data-dir (env PRIVICORE_KEK_FILE)")
	f.StringVar(&cfg.BusAddr, "bus-addr", envOr(e, "PRIVICORE_BUS_ADDR", engine.DefaultBusAddr), "device bus (embedded NATS) listen address (env PRIVICORE_BUS_ADDR)")
	f.StringVar(&cfg.NATSURL, "nats-url", envOr(e, "PRIVICORE_NATS_URL", ""), "use this external NATS instead of the embedded one (env PRIVICORE_NATS_URL)")
	f.StringVar(&calloutKey, "nats-callout-key", envOr(e, "PRIVICORE_NATS_CALLOUT_KEY", ""), "with --nats-url: a file holding the auth callout issuer's account seed (SA…); the engine then authenticates devices for that server (env PRIVICORE_NATS_CALLOUT_KEY)")
	f.StringVar(&cfg.NATSAccount, "nats-account", envOr(e, "PRIVICORE_NATS_ACCOUNT", ""), `with --nats-callout-key: the account devices are placed in (default "$G") (env PRIVICORE_NATS_ACCOUNT)`)
	f.StringVar(&cfg.NATSSystemURL, "nats-system-url", envOr(e, "PRIVICORE_NATS_SYSTEM_URL", ""), "with --nats-url: a URL with credentials of the server's system account; the engine then closes a removed device's connections at once (env PRIVICORE_NATS_SYSTEM_URL)")
	f.StringVar(&cfg.DeviceBusURL, "device-bus-url", envOr(e, "PRIVICORE_DEVICE_BUS_URL", ""), "the bus URL devices are given in their bundles, when they reach the bus by another address than the engine (comma-separated for several NATS nodes; default: --nats-url without credentials, or --bus-addr) (env PRIVICORE_DEVICE_BUS_URL)")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", envList(e, "PRIVICORE_TRUSTED_PROXIES"), "load balancers (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client for the per-address limits; their own connections are not capped per address (env PRIVICORE_TRUSTED_PROXIES)")
	f.IntVar(&cfg.MinAcks, "min-acks", envInt(e, &envErrs, "PRIVICORE_MIN_ACKS", engine.DefaultMinAcks), "storage devices that must write an exchange durably before it succeeds (env PRIVICORE_MIN_ACKS)")
	f.StringVar(&cfg.PublicURL, "public-url", envOr(e, "PRIVICORE_PUBLIC_URL", ""), "base of the download URLs handed out (default http://<addr>) (env PRIVICORE_PUBLIC_URL)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", envDuration(e, &envErrs, "PRIVICORE_TOKEN_TTL", engine.DefaultTokenTTL), "authorization token lifetime (env PRIVICORE_TOKEN_TTL)")
	f.DurationVar(&cfg.CommandRetention, "command-retention", envDuration(e, &envErrs, "PRIVICORE_COMMAND_RETENTION", engine.DefaultCommandRetention),
		"how long finished commands are kept (status polling, ballots); older ones are pruned hourly, the statistics keep their counts; 0 keeps them forever (env PRIVICORE_COMMAND_RETENTION)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", envDuration(e, &envErrs, "PRIVICORE_LEASE_TTL", engine.DefaultLeaseTTL),
		"how long a replica's leases on commands and periodic jobs outlive it: after a crash another replica resumes its work within about this long; at least "+minLeaseTTL.String()+", renewed every third of it (env PRIVICORE_LEASE_TTL)")
	addAuthFlags(cmd, e, &envErrs, &cfg)
	f.DurationVar(&cfg.WSJoinTimeout, "ws-join-timeout", envDuration(e, &envErrs, "PRIVICORE_WS_JOIN_TIMEOUT", wsproxy.DefaultJoinTimeout),
		"close a WebSocket that has not joined a channel for this long; 0: never (env PRIVICORE_WS_JOIN_TIMEOUT)")
	f.IntVar(&cfg.WSMaxConnsPerAddr, "ws-max-per-addr", envInt(e, &envErrs, "PRIVICORE_WS_MAX_PER_ADDR", wsproxy.DefaultMaxConnsPerAddr),
		"open WebSockets allowed per client IP address (more get 429); 0: no limit (env PRIVICORE_WS_MAX_PER_ADDR)")
	addLimitFlags(f, e, &envErrs, &cfg.Limits)
	f.StringVar(&logLevel, "log-level", envOr(e, "PRIVICORE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env PRIVICORE_LOG_LEVEL)")
	return cmd
}

// startEngine opens an engine (and the profiler, if asked) and binds its
// listeners; the caller serves it.
func startEngine(e *env, cfg engine.Config, pprofAddr string) (*engine.Engine, error) {
	if err := startPprof(e, pprofAddr); err != nil {
		return nil, err
	}
	eng, err := engine.New(e.ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := eng.Listen(); err != nil {
		eng.Close()
		return nil, err
	}
	return eng, nil
}

// envOr returns the environment variable name, or def when unset.
func envOr(e *env, name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// envList is the comma-separated list in the environment variable name
// (nil when unset).
func envList(e *env, name string) []string {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// envDuration is envOr for durations (≥ 0); a value that does not parse
// is added to errs (a typo such as "90d" must not quietly become the
// default) and def returned.
func envDuration(e *env, errs *[]error, name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		*errs = append(*errs, fmt.Errorf("%s=%q: not a duration ≥ 0 (such as 90s, 8h or 720h)", name, v))
		return def
	}
	return d
}

// envInt is envOr for integers; a value that does not parse is added to
// errs and def returned.
func envInt(e *env, errs *[]error, name string, def int) int {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s=%q: not an integer", name, v))
		return def
	}
	return n
}

// newLogger logs text to stderr at level (info if unreadable).
func newLogger(e *env, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}
