package profile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/password"
	"github.com/privicore/privicore/internal/ratelimit"
)

// Default limits (Config). Each is a burst of N, refilled at N per Per.
var (
	DefaultUserAddrFailures = ratelimit.Quota{N: 5, Per: 10 * time.Minute}
	DefaultUserFailures     = ratelimit.Quota{N: 10, Per: 10 * time.Minute}
	DefaultAddrFailures     = ratelimit.Quota{N: 50, Per: 10 * time.Minute}
	DefaultRegisterPerAddr  = ratelimit.Quota{N: 20, Per: time.Hour}
)

// limiterKeys bounds the keys each limiter holds (least recently used
// dropped first).
const limiterKeys = 100000

// Username length bounds, in characters after preparation.
const (
	MinUsernameChars = 3
	MaxUsernameChars = 254
)

// failureGuard is the failure limits' guard: its buckets in the database
// with Counters (cluster mode), in memory without.
func (c *Config) failureGuard() *ratelimit.FailureGuard {
	q := ratelimit.FailureQuotas{UserAddr: c.UserAddrFailures, User: c.UserFailures, Addr: c.AddrFailures}
	if c.Counters != nil {
		return ratelimit.NewSharedFailureGuard(q, c.Counters, c.Logger)
	}
	return ratelimit.NewFailureGuard(q, limiterKeys)
}

// registerLimiter is the registration limit, likewise.
func (c *Config) registerLimiter() *ratelimit.Limiter {
	if c.Counters != nil {
		return ratelimit.NewSharedQuota("register", c.RegisterPerAddr, c.Counters, c.Logger)
	}
	return ratelimit.NewQuota(c.RegisterPerAddr, limiterKeys)
}

// sweepCounters deletes the expired buckets of the limits in the database.
func (s *Service) sweepCounters(ctx context.Context) error {
	if s.cfg.Counters == nil {
		return nil
	}
	_, err := s.cfg.Counters.DeleteExpiredRateBuckets(ctx, s.now())
	return err
}

func (c *Config) limitDefaults() {
	for _, l := range []struct {
		q   *ratelimit.Quota
		def ratelimit.Quota
	}{{&c.UserAddrFailures, DefaultUserAddrFailures}, {&c.UserFailures, DefaultUserFailures},
		{&c.AddrFailures, DefaultAddrFailures}, {&c.RegisterPerAddr, DefaultRegisterPerAddr}} {
		if l.q.IsZero() {
			*l.q = l.def
		}
	}
}

// errUsernameForm is the field error for a username the PRECIS profile
// refuses.
var errUsernameForm = errors.New("must not contain spaces, control, invisible or bidirectional formatting characters, " +
	"nor mix left-to-right and right-to-left scripts (PRECIS username rules, RFC 8265)")

// PrepareUsername trims s and applies the PRECIS UsernameCasePreserved
// profile (RFC 8265: width mapping, NFC; spaces, control, invisible and
// bidirectional formatting characters refused, the Bidi rule): the form a
// username is stored and looked up in. Its case is kept; uniqueness is
// case-insensitive (the store compares lower-cased forms). The result has
// 3 to 254 characters.
func PrepareUsername(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("is required")
	}
	out, err := precis.UsernameCasePreserved.String(s)
	if err != nil {
		return "", errUsernameForm
	}
	if n := utf8.RuneCountInString(out); n < MinUsernameChars || n > MaxUsernameChars {
		return "", fmt.Errorf("must be %d to %d characters", MinUsernameChars, MaxUsernameChars)
	}
	return out, nil
}

// loginName is the form a username given at login is looked up in: the
// prepared form, or, for a name the profile refuses (one registered before
// the PRECIS rules, say with a space), the trimmed input, which finds only
// such a legacy row.
func loginName(s string) string {
	if out, err := PrepareUsername(s); err == nil {
		return out
	}
	return strings.TrimSpace(s)
}

// findLogin looks name up, then, if the input as typed differs from it, the
// input as typed: a row stored before the PRECIS rules in a form they map
// elsewhere (full-width letters, say). New rows always hold the prepared
// form, so the second lookup finds only such legacy rows.
func (s *Service) findLogin(ctx context.Context, name, typed string) (*privicore.Profile, error) {
	p, err := s.store.FindProfileByUsername(ctx, name)
	if typed = strings.TrimSpace(typed); privicore.ErrorCode(err) == privicore.ENOTFOUND && typed != name {
		return s.store.FindProfileByUsername(ctx, typed)
	}
	return p, err
}

// rateLimited is the answer of a refused attempt: retry after wait.
func rateLimited(wait time.Duration) error {
	return &privicore.Error{Code: privicore.ERATELIMIT, Message: "too many attempts, retry later", RetryAfter: wait}
}

// limitKey is the key of a username in the failure limits: its
// case-insensitive form, as unique as the username itself.
func limitKey(username string) string { return strings.ToLower(username) }

// Hasher is the service's argon2id runner (its concurrency bound).
func (s *Service) Hasher() *password.Hasher { return s.hasher }

// verifyLimited runs check, a password check of username from addr, under
// the failure limits: ERATELIMIT when they refuse; a false verdict counts as
// a failure, a true one does not count, an error (no verdict) neither.
func (s *Service) verifyLimited(ctx context.Context, username, addr string, check func() (bool, error)) (bool, error) {
	t, wait, ok, err := s.failures.Admit(ctx, limitKey(username), addr)
	if err != nil {
		return false, err
	} else if !ok {
		return false, rateLimited(wait)
	}
	ok, err = check()
	switch {
	case err != nil:
		t.Cancel()
	case ok:
		t.Succeeded()
	default:
		t.Failed()
	}
	return ok, err
}

// checkCredentials verifies username and password under the failure limits
// (verifyLimited). An unknown username costs the same argon2id work as a
// known one and counts as a failure.
func (s *Service) checkCredentials(ctx context.Context, username, pw, addr string) (*privicore.Profile, error) {
	name := loginName(username)
	if name == "" || pw == "" || len(pw) > MaxPassBytes {
		return nil, errInvalidCredentials
	}
	var p *privicore.Profile
	ok, err := s.verifyLimited(ctx, name, addr, func() (bool, error) {
		var err error
		p, err = s.findLogin(ctx, name, username)
		if privicore.ErrorCode(err) == privicore.ENOTFOUND {
			return false, s.hasher.VerifyDummy(ctx, pw)
		} else if err != nil {
			return false, err
		}
		ok, err := s.hasher.Verify(ctx, p.PasswordHash, pw)
		if errors.Is(err, password.ErrMalformed) {
			return false, nil
		}
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errInvalidCredentials
	}
	return p, nil
}
