package profile_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/profile"
)

// Registration: a weak password or a malformed username is refused at
// once; a username taken case-insensitively is ECONFLICT before the
// command, and the rejection profile.username_taken when the command meets
// the taken name (another registration won the race).
func TestRegistrationRulesAndUsernameUniqueness(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	_, err := r.Profiles.Register(ctx, profile.RegisterInput{Username: "alice", Password: "password"}, "addr")
	wantField(t, "weak password", err, "password")
	_, err = r.Profiles.Register(ctx, profile.RegisterInput{Username: "a b", Password: pw}, "addr")
	wantField(t, "username with a space", err, "username")

	c := r.Succeeded(t, sub(r.Profiles.Register(ctx, profile.RegisterInput{Username: "Alice", Password: pw}, "addr")))
	p, err := r.Store.FindProfileByID(ctx, c.Body)
	if err != nil || p.Username != "Alice" || p.PasswordHash == "" || strings.Contains(p.PasswordHash, pw) {
		t.Fatalf("registered profile: %+v %v", p, err)
	}
	_, err = r.Profiles.Register(ctx, profile.RegisterInput{Username: "ALICE", Password: pw}, "addr")
	wantReason(t, "a taken username", err, privicore.ECONFLICT, profile.ReasonUsernameTaken)

	// The command itself refuses the name, whatever was checked before it.
	r.Rejected(t, sub(r.Commands.Submit(ctx, "p2", profile.CmdRegister, map[string]string{"profileId": "p2", "username": "aLiCe",
		"passwordHash": p.PasswordHash})), profile.ReasonUsernameTaken)
}

// A login issues a token that authorizes its profile; a wrong password or
// an unknown user is the one EUNAUTHORIZED answer.
func TestAuthenticateIssuesATokenForTheRightPasswordOnly(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "bob")
	if a.Profile.Username != "bob" || a.Token.Kind != privicore.TokenAuth || !slices.Equal(a.Token.Scope, []string{privicore.ScopeAll}) {
		t.Fatalf("caller %+v %+v", a.Profile, a.Token)
	}
	if err := a.Allow(profile.ProfileOnly); err != nil {
		t.Fatalf("the profile's own token: %v", err)
	}
	_, _, err := r.Profiles.Authenticate(ctx, "bob", pw+"x", "addr")
	wantCode(t, "wrong password", err, privicore.EUNAUTHORIZED)
	_, _, err = r.Profiles.Authenticate(ctx, "nobody", pw, "addr")
	wantCode(t, "unknown user", err, privicore.EUNAUTHORIZED)
}

// An expired token, a revoked one and a token of another kind never
// authorize; a revocation is seen at once (the cache dropped, the channel
// check failing) and reported to onRevoke.
func TestTokenExpiryAndRevocation(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "carol")

	expired := profile.NewSecret(profile.PrefixAuth)
	past := time.Now().UTC().Add(-time.Minute)
	if err := r.Store.Write(ctx, func(q privicore.Queries) error {
		return q.CreateToken(ctx, &privicore.Token{ID: profile.HashSecret(expired), ProfileID: a.Profile.ID, Kind: privicore.TokenAuth,
			Scope: []string{privicore.ScopeAll}, CreatedAt: past.Add(-time.Hour), ExpiresAt: past})
	}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Profiles.Authorize(ctx, expired)
	wantCode(t, "expired token", err, privicore.EUNAUTHORIZED)
	_, err = profile.NewTokens(r.Store).Channel(ctx, expired)
	wantCode(t, "expired token on the channel", err, privicore.EUNAUTHORIZED)

	qr, _, err := r.Profiles.GenerateQRToken(ctx, a, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Profiles.Authorize(ctx, qr)
	wantCode(t, "a QR token as authorization", err, privicore.EUNAUTHORIZED)

	secret, _, err := r.Profiles.Reauthorize(ctx, a, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Profiles.Authorize(ctx, secret) // now cached
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Profiles.Revoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = r.Profiles.Authorize(ctx, secret)
	wantCode(t, "revoked token", err, privicore.EUNAUTHORIZED)
	_, err = profile.NewTokens(r.Store).Channel(ctx, secret)
	wantCode(t, "revoked token on the channel", err, privicore.EUNAUTHORIZED)
	if revoked := r.Revoked(); !slices.Equal(revoked, []string{b.Token.ID}) {
		t.Errorf("onRevoke got %v, want [%s]", revoked, b.Token.ID)
	}
	if _, err := r.Profiles.Authorize(ctx, a.Token.ID); err == nil {
		t.Fatal("a token's hash authorized as if it were its secret")
	}
	if _, err := r.Profiles.Authorize(ctx, mustSecret(t, r, "carol")); err != nil {
		t.Fatalf("another token of the profile after the revoke: %v", err)
	}
}

func mustSecret(t *testing.T, r *rig, username string) string {
	t.Helper()
	secret, _, err := r.Profiles.Authenticate(context.Background(), username, pw, "addr")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// Reauthorize: 60 s to 30 days, and only with the profile's own token.
func TestReauthorizeBounds(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "dave")
	for _, ttl := range []time.Duration{profile.MinTTL - time.Second, profile.MaxTTL + time.Second} {
		_, _, err := r.Profiles.Reauthorize(ctx, a, ttl)
		wantField(t, "ttl "+ttl.String(), err, "ttl")
	}
	_, tok, err := r.Profiles.Reauthorize(ctx, a, profile.MinTTL)
	if err != nil || tok.ExpiresAt.Sub(tok.CreatedAt) > profile.MinTTL+time.Second {
		t.Fatalf("60 s token: %+v %v", tok, err)
	}
	scoped := &profile.Auth{Profile: a.Profile, Token: &privicore.Token{ID: "x", Kind: privicore.TokenOAuth, Scope: []string{privicore.ScopeAll}}}
	_, _, err = r.Profiles.Reauthorize(ctx, scoped, time.Hour)
	wantReason(t, "an OAuth token reauthorizing", err, privicore.EFORBIDDEN, profile.ReasonScopeMissing)
}

// Changing the password: the current one must be right (rejection
// profile.wrong_password otherwise), the new one strong; afterwards only
// the new password logs in. Issued tokens stay valid.
func TestChangePassword(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "erin")
	const next = "another correct horse battery 77"
	_, err := r.Profiles.ChangePassword(ctx, a, pw, "password", "addr")
	wantField(t, "a weak new password", err, "newPassword")
	r.Rejected(t, sub(r.Profiles.ChangePassword(ctx, a, pw+"x", next, "addr")), profile.ReasonWrongPassword)
	if _, _, err := r.Profiles.Authenticate(ctx, "erin", pw, "addr"); err != nil {
		t.Fatalf("after a refused change the old password: %v", err)
	}
	r.Succeeded(t, sub(r.Profiles.ChangePassword(ctx, a, pw, next, "addr")))
	_, _, err = r.Profiles.Authenticate(ctx, "erin", pw, "addr")
	wantCode(t, "the old password after the change", err, privicore.EUNAUTHORIZED)
	if _, _, err := r.Profiles.Authenticate(ctx, "erin", next, "addr"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if _, err := r.Profiles.Authorize(ctx, mustSecretOf(t, r, "erin", next)); err != nil {
		t.Fatal(err)
	}
	// A change checked against the password before this one is refused:
	// the password is no longer the one checked.
	r.Rejected(t, sub(r.Profiles.ChangePassword(ctx, a, pw, next, "addr")), profile.ReasonWrongPassword)
}

func mustSecretOf(t *testing.T, r *rig, username, password string) string {
	t.Helper()
	secret, _, err := r.Profiles.Authenticate(context.Background(), username, password, "addr")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// A public key must carry a valid signature (tag and checksum): a changed
// digit is EINVALID on publicKey; a valid key makes the profile active.
func TestPublicKeySignatureRule(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "frank")
	if err := profile.RequireActive(a); privicore.ErrorReason(err) != profile.ReasonPublicKeyRequired {
		t.Fatalf("before a key: %v", err)
	}
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key := keys.SignedPublic(priv)
	bad := []byte(key)
	if bad[10] = '0'; key[10] == '0' { // any other hex digit
		bad[10] = '1'
	}
	_, err = r.Profiles.RegisterPublicKey(ctx, a.Profile, string(bad), "")
	wantField(t, "a key whose digit changed", err, "publicKey")
	_, err = r.Profiles.RegisterPublicKey(ctx, a.Profile, key[:len(key)-2], "")
	wantField(t, "a short key", err, "publicKey")
	_, err = r.Profiles.PublicKey(ctx, a, "")
	wantCode(t, "no key yet", err, privicore.ENOTFOUND)

	r.Succeeded(t, sub(r.Profiles.RegisterPublicKey(ctx, a.Profile, strings.ToUpper(key), "")))
	b, err := r.Profiles.Authorize(ctx, mustSecret(t, r, "frank"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Profiles.PublicKey(ctx, b, ""); err != nil || got != key {
		t.Fatalf("registered key %q %v, want %q", got, err, key)
	}
	if err := profile.RequireActive(b); err != nil {
		t.Fatalf("after the key: %v", err)
	}
	// Without a device service, a device's key is refused as not found.
	r.Rejected(t, sub(r.Profiles.RegisterPublicKey(ctx, b.Profile, key, "dev1")), profile.ReasonDeviceNotFound)
}

// The legacy flow: each single-use step is spent once; the authorization
// token has the scope asked for in step 3, and a scoped token opens only
// endpoints of its scopes (never the profile-only ones).
func TestLegacyFlowScope(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.Register(t, "gina")
	action, err := r.Profiles.AttemptAuthentication(ctx, "gina", pw, "addr")
	if err != nil {
		t.Fatal(err)
	}
	temp, err := r.Profiles.RetrieveTempToken(ctx, action)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Profiles.RetrieveTempToken(ctx, action)
	wantCode(t, "the action id again", err, privicore.EUNAUTHORIZED)
	_, err = r.Profiles.RequestAuthorizationToken(ctx, temp, []string{"device:nope"})
	wantField(t, "an unknown scope", err, "scope")

	req := r.Succeeded(t, sub(r.Profiles.RequestAuthorizationToken(ctx, temp, []string{privicore.ScopeVotingRead, privicore.ScopeDeviceRead})))
	secret, tok, err := r.Profiles.RetrieveAuthorizationToken(ctx, temp, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Scope, []string{privicore.ScopeDeviceRead, privicore.ScopeVotingRead}) {
		t.Fatalf("scope %v, want the asked scopes in the catalogue's order", tok.Scope)
	}
	a, err := r.Profiles.Authorize(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Allow(privicore.ScopeDeviceRead); err != nil {
		t.Fatalf("a granted scope: %v", err)
	}
	wantReason(t, "a scope not granted", a.Allow(privicore.ScopeDeviceWrite), privicore.EFORBIDDEN, profile.ReasonScopeMissing)
	wantReason(t, "a profile-only endpoint", a.Allow(profile.ProfileOnly), privicore.EFORBIDDEN, profile.ReasonScopeMissing)
	_, _, err = r.Profiles.RetrieveAuthorizationToken(ctx, temp, req.ID)
	wantCode(t, "the temporary token again", err, privicore.EUNAUTHORIZED)

	// Without scope[] the token is the profile's full one.
	action, _ = r.Profiles.AttemptAuthentication(ctx, "gina", pw, "addr")
	temp, _ = r.Profiles.RetrieveTempToken(ctx, action)
	req = r.Succeeded(t, sub(r.Profiles.RequestAuthorizationToken(ctx, temp, nil)))
	secret, _, err = r.Profiles.RetrieveAuthorizationToken(ctx, temp, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := r.Profiles.Authorize(ctx, secret); err != nil || a.Allow(profile.ProfileOnly) != nil {
		t.Fatalf("unscoped legacy token: %v", err)
	}
}

// Step 4 finds only the caller's own step-3 command: another profile's
// command id is ENOTFOUND, like an unknown one.
func TestLegacyFlowFindsOnlyTheProfilesOwnRequest(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.Register(t, "hank")
	r.Register(t, "iris")
	temp := func(user string) string {
		action, err := r.Profiles.AttemptAuthentication(ctx, user, pw, "addr")
		if err != nil {
			t.Fatal(err)
		}
		tt, err := r.Profiles.RetrieveTempToken(ctx, action)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	hank, iris := temp("hank"), temp("iris")
	req := r.Succeeded(t, sub(r.Profiles.RequestAuthorizationToken(ctx, hank, nil)))
	_, _, err := r.Profiles.RetrieveAuthorizationToken(ctx, iris, req.ID)
	wantCode(t, "another profile's request", err, privicore.ENOTFOUND)
	_, _, err = r.Profiles.RetrieveAuthorizationToken(ctx, iris, "no-such-command")
	wantCode(t, "an unknown request", err, privicore.ENOTFOUND)
	if _, _, err := r.Profiles.RetrieveAuthorizationToken(ctx, hank, req.ID); err != nil {
		t.Fatalf("the owner's request: %v", err)
	}
}

// A QR token carries a known role only, resolves to its owner until it
// expires, and enrolls one device: a second spend is EUNAUTHORIZED.
func TestQRTokenIsSingleUse(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.Register(t, "jack")
	_, _, err := r.Profiles.GenerateQRToken(ctx, a, "admin")
	wantField(t, "an unknown role", err, "role")
	secret, tok, err := r.Profiles.GenerateQRToken(ctx, a, "storage")
	if err != nil || !profile.IsQRToken(secret) || tok.Role != "storage" || tok.ExpiresAt.Sub(tok.CreatedAt) > profile.QRTTL {
		t.Fatalf("QR token %q %+v %v", secret, tok, err)
	}
	q, err := r.Profiles.AuthorizeQR(ctx, secret)
	if err != nil || q.Profile.ID != a.Profile.ID {
		t.Fatalf("AuthorizeQR: %+v %v", q, err)
	}
	if err := r.Profiles.SpendQR(ctx, q.Token); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a second spend", r.Profiles.SpendQR(ctx, q.Token), privicore.EUNAUTHORIZED)
	_, err = r.Profiles.AuthorizeQR(ctx, mustSecret(t, r, "jack"))
	wantCode(t, "an authorization token as a QR token", err, privicore.EUNAUTHORIZED)
}
