package httpapi_test

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/syncbuf"
)

func TestNoSecretReachesTheLog(t *testing.T) {
	var logs syncbuf.Buffer
	e := enginetest.Start(t, func(c *engine.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := newAPI(t, e)
	u := a.activeUser("secretive")
	newPass := "An0ther!strong-passphrase-here"
	s := join(t, e.WSURL, u.Token)
	a.succeed(accepted(t, a.postJSON("/profile/change-password", u.Token, map[string]string{"currentPassword": u.Password, "newPassword": newPass})))
	a.postJSON("/profile/authenticate", "", map[string]string{"username": u.Name, "password": "wrong-" + newPass})
	qr := a.postJSON("/profile/generate-token-qr", u.Token, nil).Map(t)["qrToken"].(string)
	fresh := a.postForm("/profile/reauthorize-authorization-token", u.Token, url.Values{"ttl": {"600"}}).Map(t)["authorizationToken"].(string)
	a.get("/request-status/x?auth="+qr, fresh)
	a.postJSON("/profile/revoke-authorization-token", u.Token, nil)
	s.read(0)

	out := logs.String()
	if !strings.Contains(out, "request") {
		t.Fatalf("the debug log is empty; the test proves nothing:\n%s", out)
	}
	for name, secret := range map[string]string{"password": u.Password, "new password": newPass, "wrong password": "wrong-" + newPass,
		"token": u.Token, "qr token": qr, "fresh token": fresh} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s reached the log", name)
		}
	}
}
