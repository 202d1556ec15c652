package client_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/profile"
)

const strongPassword = "Tr0ub4dor&3-correct-horse-battery"

var seq atomic.Int64

func newUser(t *testing.T, c *client.Client) string {
	t.Helper()
	name := fmt.Sprintf("sdk-%d-%d", time.Now().UnixNano()%1e6, seq.Add(1))
	ctx := context.Background()
	id, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: name, Password: strongPassword})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.WaitCommand(ctx, id)
	if err != nil || len(out.Body) != 26 {
		t.Fatalf("register outcome %+v %v", out, err)
	}
	return name
}

func TestSessionFlow(t *testing.T) {
	e := enginetest.Start(t)
	ctx := context.Background()
	name := newUser(t, client.New(e.URL))

	s, err := client.Login(ctx, e.URL, name, strongPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Before the key: 403 with the reason.
	_, err = s.GenerateQRToken(ctx, "")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Reason != "profile.public_key_required" {
		t.Fatalf("before key: %v", err)
	}

	_, pub, err := client.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) })
	if err != nil || out.Status != 2 {
		t.Fatalf("register key: %+v %v", out, err)
	}
	ackOnSocket(t, s, out.CommandID) // not only by the safety-net poll
	if got, err := s.RetrievePublicKey(ctx); err != nil || got != pub {
		t.Fatalf("public key %q %v", got, err)
	}
	if k, err := s.EnginePublicKey(ctx); err != nil || k != e.EngineKey {
		t.Fatalf("engine key %q %v", k, err)
	}
	if id, err := s.ProfileID(ctx); err != nil || len(id) != 26 {
		t.Fatalf("profile id %q %v", id, err)
	}

	// A rejection comes back as a RejectedError with the reason key.
	_, err = s.Do(ctx, func() (string, error) {
		return s.ChangePassword(ctx, "wrong-"+strongPassword, "An0ther!strong-passphrase-here")
	})
	if !client.IsReason(err, "profile.wrong_password") {
		t.Fatalf("wrong current password: %v", err)
	}
	// A 422 is an *Error with field messages.
	_, err = s.ChangePassword(ctx, strongPassword, "weak")
	if !errors.As(err, &apiErr) || apiErr.Status != 422 || len(apiErr.Fields["newPassword"]) == 0 {
		t.Fatalf("weak password: %v", err)
	}

	// A successful change: the old password stops working, the token stays.
	const newPassword = "An0ther!strong-passphrase-here"
	if _, err := s.Do(ctx, func() (string, error) { return s.ChangePassword(ctx, strongPassword, newPassword) }); err != nil {
		t.Fatalf("change password: %v", err)
	}
	if _, err := client.New(e.URL).Authenticate(ctx, name, strongPassword); !client.IsStatus(err, 401) {
		t.Fatalf("old password after the change: %v", err)
	}
	if _, err := client.New(e.URL).Authenticate(ctx, name, newPassword); err != nil {
		t.Fatalf("new password: %v", err)
	}

	qr, err := s.GenerateQRToken(ctx, "storage")
	if err != nil || qr.Value == "" || time.Until(qr.ExpiresAt) > 5*time.Minute {
		t.Fatalf("qr %+v %v", qr, err)
	}
	fresh, err := s.Reauthorize(ctx, 10*time.Minute)
	if err != nil || time.Until(fresh.ExpiresAt) > 10*time.Minute || time.Until(fresh.ExpiresAt) < 9*time.Minute {
		t.Fatalf("reauthorize %+v %v", fresh, err)
	}
	if exp, err := s.TokenExpiry(ctx); err != nil || time.Until(exp) < 7*time.Hour {
		t.Fatalf("expiry %v %v", exp, err)
	}
	if err := s.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProfileID(ctx); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("after revoke: %v", err)
	}
	// The fresh token still works.
	c2 := client.New(e.URL, client.WithToken(fresh.Value))
	if _, err := c2.ProfileID(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLoginFailuresAndHealth(t *testing.T) {
	e := enginetest.Start(t)
	ctx := context.Background()
	c := client.New(e.URL)
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := client.Login(ctx, e.URL, "nobody", strongPassword)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "unauthorized" {
		t.Fatalf("bad login: %v", err)
	}
	_, err = client.NewSession(ctx, client.New(e.URL, client.WithToken("T-invalid")))
	if !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("session with a bad token: %v", err)
	}
	priv, pub, err := c.GenerateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := client.SignedPublicKey(priv); err != nil || got != pub {
		t.Fatalf("server pair does not match: %v", err)
	}
	name := newUser(t, c)
	_, pub2, _ := client.GenerateKeyPair()
	id, err := c.RegisterPublicKeyWithCredentials(ctx, name, strongPassword, pub2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitCommand(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = c.RegisterPublicKeyWithCredentials(ctx, name, strongPassword, pub2[:198])
	if !errors.As(err, &apiErr) || apiErr.Status != 422 || len(apiErr.Fields["publicKey"]) == 0 {
		t.Fatalf("bad key: %v", err)
	}
}

// loggedIn starts an engine and returns a session of a new profile (no key
// yet), closed when the test ends.
func loggedIn(t *testing.T) (*enginetest.Engine, *client.Session) {
	t.Helper()
	e := enginetest.Start(t)
	s, err := client.Login(context.Background(), e.URL, newUser(t, client.New(e.URL)), strongPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return e, s
}

// TestSessionRejoinsAfterTheServerDropsIt has the server close the session's
// socket: the session re-dials and re-joins, and acks arrive on the new socket.
func TestSessionRejoinsAfterTheServerDropsIt(t *testing.T) {
	e, s := loggedIn(t)
	ctx := context.Background()
	profileID, _ := s.ProfileID(ctx)

	e.Hub.CloseToken(profile.HashSecret(s.Token())) // the token stays valid
	deadline := time.Now().Add(10 * time.Second)
	for (s.Reconnects() < 1 || e.Hub.Joined(profileID) != 1) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s.Reconnects() < 1 || e.Hub.Joined(profileID) != 1 {
		t.Fatalf("session did not re-join: %d reconnects, %d joined", s.Reconnects(), e.Hub.Joined(profileID))
	}
	// The ack comes on the socket, well before the safety-net poll would.
	_, pub, _ := client.GenerateKeyPair()
	reconnects := s.Reconnects()
	out, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) })
	if err != nil || out.Status != 2 {
		t.Fatalf("after re-join: %+v %v", out, err)
	}
	ackOnSocket(t, s, out.CommandID) // not only by polling
	if s.Reconnects() != reconnects {
		t.Fatalf("the session re-joined again (%d → %d): the ack may have come on a later socket", reconnects, s.Reconnects())
	}
}

// ackOnSocket waits until the session's socket has delivered command id's
// success ack (the session's Events see every event of its socket).
func ackOnSocket(t *testing.T, s *client.Session, id string) {
	t.Helper()
	guard := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("the session closed before the ack of %s came on its socket", id)
			}
			if ev.Type == "X-DPT-CAB-ID" && ev.ID == id && ev.CommandStatus == 2 {
				return
			}
		case <-guard:
			t.Fatalf("the ack of %s never came on the socket", id)
		}
	}
}

// TestAwaitFallsBackToPolling closes every socket for good: Await still
// resolves, by polling.
func TestAwaitFallsBackToPolling(t *testing.T) {
	t.Parallel() // waits for the safety-net poll: runs beside the others
	e, s := loggedIn(t)
	ctx := context.Background()
	e.Hub.Close() // no socket will be accepted again
	_, pub, _ := client.GenerateKeyPair()
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := s.Do(actx, func() (string, error) { return s.RegisterPublicKey(actx, pub) })
	if err != nil || out.Status != 2 {
		t.Fatalf("await without a socket: %+v %v", out, err)
	}
}

func TestStoreAndRetrieveBothPaths(t *testing.T) {
	_, s := loggedIn(t)
	ctx := context.Background()
	_, pub, _ := client.GenerateKeyPair()
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) }); err != nil {
		t.Fatal(err)
	}
	// A storage device, enrolled with the SDK and run in-process.
	dev, priv := device(t, s, "sdk-storage", s.RegisterStorage)
	runStorageDevice(t, s, dev, priv)

	key := client.NewDataKey()
	for _, size := range []int{10, 100 << 10, 3<<20 + 5} { // inline exchange + inline answer, inline + download, streamed
		plain := make([]byte, size)
		for i := range plain {
			plain[i] = byte(i)
		}
		var progressed int64
		dtk, err := s.Store(ctx, key, plain, client.FileMeta{FileName: "f", Context: "sdk"}, client.WithProgress(func(sent, _ int64) { progressed = sent }))
		if err != nil {
			t.Fatalf("store %d bytes: %v", size, err)
		}
		if size > client.MaxInline && progressed < int64(size) {
			t.Fatalf("progress reported %d of %d", progressed, size)
		}
		got, err := s.Retrieve(ctx, key, dtk)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("retrieve %d bytes: %d back, %v", size, len(got), err)
		}
		if _, err := s.Retrieve(ctx, client.NewDataKey(), dtk); err == nil {
			t.Fatal("decrypted with the wrong key")
		}
	}
	page, err := s.ListDataTokens(ctx, 1, 10, map[string]string{"context": "sdk"})
	if err != nil || page.Meta.Total != 3 {
		t.Fatalf("list: %+v %v", page, err)
	}
}

// runStorageDevice runs dev, an approved storage device of s with the
// private key priv, in-process over the real bus until the test ends.
func runStorageDevice(t *testing.T, s *client.Session, dev string, priv *ecdh.PrivateKey) {
	t.Helper()
	b, err := s.DeviceConfiguration(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	d, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
}
