// Package oauth holds the rules of OAuth applications (spec §5): a profile
// registers an application with scopes from the catalogue, retrieves its
// client secret once, consents to authorization-code grants, and removes
// the application (every token it holds dies at once). The application
// retrieves its code with its client credentials and the nonce, exchanges
// the code once for an access and a refresh token, and rotates them.
//
// Secrets (client secrets, codes, access and refresh tokens) are 256-bit
// random, stored only as SHA-256 hashes, and looked up by hash or compared
// in constant time. A reused authorization code or refresh token revokes
// every token of its grant: a replay means a secret leaked.
//
// applications.go holds the applications, code.go the consent and the
// code, client.go the client's authentication, tokens.go the token pairs.
package oauth

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/profile"
)

// Command types handled by this package.
const (
	CmdRegister    = "oauth.register"
	CmdRemove      = "oauth.remove"
	CmdRequestCode = "oauth.request_code"
)

// Reasons: rejections on acks, and the reason of 422 answers.
const (
	ReasonNotFound         = "oauth.application_not_found"
	ReasonAlreadyRetrieved = "oauth.already_retrieved"
	ReasonScopeNotAllowed  = "oauth.scope_not_allowed"
	ReasonNonceReused      = "oauth.nonce_reused"
	ReasonNonceMismatch    = "oauth.nonce_mismatch"
	ReasonCodeRetrieved    = "oauth.code_already_retrieved"
	ReasonCodeExpired      = "oauth.code_expired"
)

// Lifetimes.
const (
	CodeTTL    = 10 * time.Minute    // from consent to the exchange for tokens
	AccessTTL  = time.Hour           // access tokens
	RefreshTTL = 30 * 24 * time.Hour // refresh tokens
)

// Secret prefixes.
const (
	prefixClientSecret = "CS-"
	prefixCode         = "AC-"
	prefixRefresh      = "RT-"
)

// Service implements the OAuth rules.
type Service struct {
	store    privicore.Store
	cmds     *command.Processor
	profiles *profile.Service
	now      func() time.Time
}

// New returns the service and registers its command handlers with cmds.
func New(store privicore.Store, cmds *command.Processor, profiles *profile.Service) *Service {
	s := &Service{store: store, cmds: cmds, profiles: profiles, now: func() time.Time { return time.Now().UTC() }}
	cmds.Handle(CmdRegister, s.handleRegister)
	cmds.Event(CmdRegister, command.Fires(privicore.EventOAuthRegister))
	cmds.Handle(CmdRemove, s.handleRemove)
	cmds.Handle(CmdRequestCode, s.handleRequestCode)
	return s
}

var (
	errNotFound    = privicore.Errorf(privicore.ENOTFOUND, "oauth application not found")
	errBadClient   = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid client credentials")
	errBadCode     = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid, used or expired authorization code")
	errBadRefresh  = privicore.Errorf(privicore.EUNAUTHORIZED, "invalid, used or expired refresh token")
	errCodeMissing = privicore.Errorf(privicore.ENOTFOUND, "authorization code request not found")
)

// checkScopes adds field errors unless scopes is a non-empty list from the
// catalogue.
func checkScopes(v privicore.ValidationErrors, field string, scopes []string) {
	if len(scopes) == 0 {
		v.Add(field, "must name at least one scope")
	}
	privicore.CheckScopes(v, field, scopes)
}

// dedupe returns in without repeats, in order.
func dedupe(in []string) []string {
	out := []string{}
	for _, x := range in {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// decode reads a command's payload into v (a rejection if it is malformed).
func decode(c *privicore.Command, v any) error {
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return privicore.Reject("command.bad_payload", "bad payload")
	}
	return nil
}
