package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// An OAuth access token can never set or replace the profile's own public
// key, whatever its scopes (it is the profile's own management), and
// registers a device's key only with device:write.
func TestApplicationCannotRegisterTheProfilesKey(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("key-scope")
	all := a.authorize(u, a.oauthApp(u, "all"), "n-all", "all").AccessToken
	reader := a.authorize(u, a.oauthApp(u, "data-token:read"), "n-r", "data-token:read").AccessToken
	priv, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other := keys.SignedPublic(priv)
	r := a.postJSON("/public-key/register-public-key", all, map[string]string{"publicKey": other})
	expect(t, r, http.StatusForbidden)
	if m := r.Map(t); m["reason"] != "oauth.scope_missing" {
		t.Fatalf("an application replacing the profile's key: %v", m)
	}
	r = a.postJSON("/public-key/register-public-key", reader, map[string]string{"publicKey": other, "deviceIdentifier": "0f0e0d0c-0b0a-4908-8706-050403020100"})
	expect(t, r, http.StatusForbidden)
	// The profile's own token still may.
	a.succeed(accepted(t, a.postJSON("/public-key/register-public-key", u.Token, map[string]string{"publicKey": other})))
}
