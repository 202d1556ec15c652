package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/profile"
	"github.com/privicore/privicore/internal/ratelimit"
)

// authQuotaFlag is one --auth-* limit: a count flag and a window flag.
type authQuotaFlag struct {
	name, env string // flag stem ("auth-user") and env stem ("PRIVICORE_AUTH_USER")
	countWord string // "failures" or "per-addr"
	what      string // help text: what is counted
	q         *ratelimit.Quota
	def       ratelimit.Quota
}

func authQuotaFlags(cfg *engine.Config) []authQuotaFlag {
	return []authQuotaFlag{
		{"auth-user-addr", "PRIVICORE_AUTH_USER_ADDR", "failures", "failed password checks per (username, client address)", &cfg.AuthUserAddrFailures, profile.DefaultUserAddrFailures},
		{"auth-user", "PRIVICORE_AUTH_USER", "failures", "failed password checks per username over all addresses (refuses only addresses that have failed)", &cfg.AuthUserFailures, profile.DefaultUserFailures},
		{"auth-addr", "PRIVICORE_AUTH_ADDR", "failures", "failed password checks per client address over all usernames", &cfg.AuthAddrFailures, profile.DefaultAddrFailures},
		{"auth-register", "PRIVICORE_AUTH_REGISTER", "per-addr", "registrations per client address", &cfg.RegisterPerAddr, profile.DefaultRegisterPerAddr},
	}
}

// addAuthFlags adds the --auth-* flags of `privicore serve`: for each limit
// a burst (--auth-…-failures, -1 for no limit) refilled over a window
// (--auth-…-window), and --auth-hash-concurrency.
func addAuthFlags(cmd *cobra.Command, e *env, envErrs *[]error, cfg *engine.Config) {
	f := cmd.Flags()
	for _, a := range authQuotaFlags(cfg) {
		count, window := a.name+"-"+a.countWord, a.name+"-window"
		countEnv, windowEnv := a.env+"_"+strings.ToUpper(strings.ReplaceAll(a.countWord, "-", "_")), a.env+"_WINDOW"
		f.IntVar(&a.q.N, count, envInt(e, envErrs, countEnv, a.def.N),
			fmt.Sprintf("%s: burst allowed, refilled over --%s; -1 for no limit (env %s)", a.what, window, countEnv))
		f.DurationVar(&a.q.Per, window, envDuration(e, envErrs, windowEnv, a.def.Per),
			fmt.Sprintf("the window over which --%s refills (env %s)", count, windowEnv))
	}
	f.IntVar(&cfg.HashConcurrency, "auth-hash-concurrency", envInt(e, envErrs, "PRIVICORE_AUTH_HASH_CONCURRENCY", 0),
		"argon2id password hashes run at once, 19 MiB each (register, login, change-password); 0: one per CPU (env PRIVICORE_AUTH_HASH_CONCURRENCY)")
}

// checkAuthFlags refuses counts other than -1 or ≥ 1, and windows ≤ 0.
func checkAuthFlags(cfg *engine.Config) error {
	var errs []error
	for _, a := range authQuotaFlags(cfg) {
		switch {
		case a.q.N == -1:
		case a.q.N < 1:
			errs = append(errs, fmt.Errorf("--%s-%s=%d: must be at least 1, or -1 for no limit", a.name, a.countWord, a.q.N))
		case a.q.Per <= 0 || a.q.Per > 365*24*time.Hour:
			errs = append(errs, fmt.Errorf("--%s-window=%v: must be more than 0 and at most 8760h", a.name, a.q.Per))
		}
	}
	if cfg.HashConcurrency < 0 {
		errs = append(errs, fmt.Errorf("--auth-hash-concurrency=%d: must be 0 (one per CPU) or more", cfg.HashConcurrency))
	}
	return errors.Join(errs...)
}
