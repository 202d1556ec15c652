package datatoken_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
)

// world is a real engine (SQLite store, command processor, embedded bus)
// whose data token service the tests drive directly; profiles and storage
// devices are set up through the engine's HTTP API with the client SDK,
// and the devices are real storage daemons on the bus.
type world struct {
	t *testing.T
	e *enginetest.Engine
}

func newWorld(t *testing.T, configure ...func(*engine.Config)) *world {
	return &world{t: t, e: enginetest.Start(t, configure...)}
}

// owner is a registered profile with its public key.
type owner struct {
	w  *world
	c  *client.Client
	ID string // profile id
}

var ctx = context.Background()

func (w *world) owner(name string) *owner {
	w.t.Helper()
	c := client.New(w.e.URL)
	user := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	const password = "correct horse battery staple 42!"
	cmd, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: user, Password: password})
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := c.WaitCommand(ctx, cmd)
	if err != nil {
		w.t.Fatal(err)
	}
	tok, err := c.Authenticate(ctx, user, password)
	if err != nil {
		w.t.Fatal(err)
	}
	c.SetToken(tok.Value)
	priv, _ := keys.Generate()
	o := &owner{w: w, c: c, ID: out.Body}
	o.wait(c.RegisterPublicKey(ctx, keys.SignedPublic(priv)))
	return o
}

// wait waits for the outcome of the command submitted (id, err).
func (o *owner) wait(id string, err error) client.Outcome {
	o.w.t.Helper()
	if err != nil {
		o.w.t.Fatal(err)
	}
	out, err := o.c.WaitCommand(ctx, id)
	if err != nil {
		o.w.t.Fatalf("command %s: %v", id, err)
	}
	return out
}

// device enrolls a storage device and starts a real daemon for it; it
// returns the daemon, its device id and its directory.
func (o *owner) device(name string) (*storagedevice.Device, string, string) {
	o.w.t.Helper()
	id := o.wait(o.c.RequestDeviceIdentifier(ctx, name)).Body
	priv, _ := keys.Generate()
	o.wait(o.c.RegisterDeviceKey(ctx, id, keys.SignedPublic(priv)))
	o.wait(o.c.ApproveDevice(ctx, id))
	o.wait(o.c.RegisterStorage(ctx, id))
	b, err := o.c.DeviceConfiguration(ctx, id)
	if err != nil {
		o.w.t.Fatal(err)
	}
	dir := o.w.t.TempDir()
	d, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: dir})
	if err != nil {
		o.w.t.Fatal(err)
	}
	o.w.t.Cleanup(d.Close)
	o.waitOnline(id)
	return d, id, dir
}

// waitOnline waits until the engine sees device id on the bus.
func (o *owner) waitOnline(id string) {
	o.w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ds, err := o.c.Devices(ctx)
		if err != nil {
			o.w.t.Fatal(err)
		}
		for _, d := range ds {
			if d.DeviceIdentifier == id && d.Online {
				return
			}
		}
	}
	o.w.t.Fatalf("device %s never came online", id)
}

// waitOffline waits until the engine no longer sees device id on the bus.
func (o *owner) waitOffline(id string) {
	o.w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ds, err := o.c.Devices(ctx)
		if err != nil {
			o.w.t.Fatal(err)
		}
		if !slices.ContainsFunc(ds, func(d client.Device) bool { return d.DeviceIdentifier == id && d.Online }) {
			return
		}
	}
	o.w.t.Fatalf("device %s never went offline", id)
}

// succeed settles a command and fails the test unless it succeeded.
func (w *world) succeed(c *privicore.Command, err error) *privicore.Command {
	w.t.Helper()
	return commandtest.Succeeded(w.t, w.e.Store, c, err)
}

// rejected returns a check that settles a command and fails the test
// unless it was rejected for reason.
func (w *world) rejected(reason string) func(*privicore.Command, error) {
	return func(c *privicore.Command, err error) {
		w.t.Helper()
		commandtest.Rejected(w.t, w.e.Store, reason, c, err)
	}
}

// reserve reserves space for o and returns the reservation command and
// the temporary token.
func (w *world) reserve(o *owner, ttl int) (string, string) {
	w.t.Helper()
	c := w.succeed(w.e.DataTokens.Reserve(ctx, o.ID, "", "ctx", ttl, nil))
	tmp, _, err := w.e.DataTokens.TemporaryToken(ctx, o.ID, c.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return c.ID, tmp
}

// wire is a random layer-1 payload of n bytes of plaintext.
func wire(t *testing.T, n int) []byte {
	key := make([]byte, 32)
	rand.Read(key)
	plain := make([]byte, n)
	rand.Read(plain)
	b, err := keys.Seal(key, plain)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// store exchanges payload for o and makes the token permanent; it returns
// the dtk-… token.
func (w *world) store(o *owner, payload []byte) string {
	w.t.Helper()
	_, tmp := w.reserve(o, 0)
	w.succeed(w.e.DataTokens.Exchange(ctx, o.ID, tmp, b64(payload)))
	dtk, err := w.e.DataTokens.ConfigureFileMeta(ctx, o.ID, datatokenFileMeta(tmp))
	if err != nil {
		w.t.Fatal(err)
	}
	return dtk
}

// token reads o's token record.
func (w *world) token(o *owner, tok string) *privicore.DataToken {
	w.t.Helper()
	t, err := w.e.Store.FindDataToken(ctx, o.ID, tok)
	if err != nil {
		w.t.Fatalf("token %s: %v", tok, err)
	}
	return t
}

// uploadSecret is the credential of a stream upload URL.
func uploadSecret(t *testing.T, stream string) string {
	u, err := url.Parse(stream)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("auth")
}

// eventually waits for cond.
var eventually = commandtest.Eventually

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func datatokenFileMeta(tmp string) datatoken.FileMeta {
	return datatoken.FileMeta{Token: tmp, FileName: "f", Extension: "bin", Path: "/x"}
}
