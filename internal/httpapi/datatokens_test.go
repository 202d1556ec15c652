package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/keys"
	"github.com/privicore/privicore/internal/protocol"
)

// storageDevice enrolls a storage device for u and starts a real instance
// of the daemon on the bus, with its files under a temp dir.
func (a *api) storageDevice(u *user, name string) *storagedevice.Device {
	a.t.Helper()
	id := a.approvedDevice(u, name)
	a.succeed(accepted(a.t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id})))
	return a.startDevice(u, id, a.t.TempDir())
}

func (a *api) startDevice(u *user, id, dir string) *storagedevice.Device {
	a.t.Helper()
	b := a.bundle(u.Token, id)
	priv, _ := keys.Generate()
	d, err := storagedevice.Start(storagedevice.Config{Bundle: b,
		Key: priv, Dir: dir})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(d.Close)
	return d
}

// ciphertext makes a layer-1 payload as a client would.
func ciphertext(t testing.TB, n int) (wire, key []byte) {
	key = make([]byte, 32)
	rand.Read(key)
	plain := make([]byte, n)
	rand.Read(plain)
	wire, err := keys.Seal(key, plain)
	if err != nil {
		t.Fatal(err)
	}
	return wire, key
}

// reserve reserves space and returns the temporary token.
func (a *api) reserve(token, context string, ttl int) string {
	a.t.Helper()
	body := map[string]any{"context": context}
	if ttl > 0 {
		body["ttl"] = ttl
	}
	cmd := accepted(a.t, a.postJSON("/data-token/reserve-token-space", token, body))
	a.succeed(cmd)
	r := a.get("/data-token/retrieve-temporary-data-token/"+cmd, token)
	expect(a.t, r, 200)
	tmp, _ := r.Map(a.t)["token"].(string)
	if !strings.HasPrefix(tmp, "tmp-") {
		a.t.Fatalf("temporary token %s", r.Body)
	}
	return tmp
}

// store runs the full small-payload flow and returns the permanent token.
// exchange posts wire for the reservation tmp and returns the accepted
// command's id.
func (a *api) exchange(token, tmp string, wire []byte) string {
	a.t.Helper()
	return accepted(a.t, a.postJSON("/data-token/exchange-data-for-token", token, map[string]string{"temporaryTokenSpace": tmp, "data": base64.StdEncoding.EncodeToString(wire)}))
}

func (a *api) store(u *user, context string, wire []byte) string {
	a.t.Helper()
	tmp := a.reserve(u.Token, context, 0)
	a.succeed(a.exchange(u.Token, tmp, wire))
	r := a.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": tmp, "fileName": "f", "extension": "bin", "context": context, "size": len(wire), "path": "/x"})
	expect(a.t, r, 200)
	dtk, _ := r.Map(a.t)["token"].(string)
	if !strings.HasPrefix(dtk, "dtk-") {
		a.t.Fatalf("configure-file-meta: %s", r.Body)
	}
	return dtk
}

// retrieve requests the data of dtk and returns the ciphertext from the
// X-DPT-CAB-REQUEST-ID event (inline or through the download URL).
func (a *api) retrieve(s *socket, token, dtk string) ([]byte, map[string]any) {
	a.t.Helper()
	r := a.postJSON("/data-token/request-data", token, map[string]string{"token": dtk})
	expect(a.t, r, 202)
	reqID := r.Header.Get("X-DPT-CAB-REQUEST-ID")
	if reqID == "" || r.Header.Get("X-DPT-CAB-ID") == "" || r.Map(a.t)["requestId"] != reqID {
		a.t.Fatalf("request-data answer %v %s", r.Header, r.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := s.read(time.Until(deadline))
		if m == nil {
			break
		}
		data, _ := m["data"].(map[string]any)
		if data["type"] != "X-DPT-CAB-REQUEST-ID" || data["id"] != reqID {
			continue
		}
		if data["command_status"] != float64(2) {
			return nil, data
		}
		body := data["body"].(string)
		if data["output_type"] == float64(0) {
			b, err := base64.StdEncoding.DecodeString(body)
			if err != nil {
				a.t.Fatal(err)
			}
			return b, data
		}
		res, err := http.Get(body)
		if err != nil {
			a.t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Length") == "" {
			a.t.Fatalf("download %d", res.StatusCode)
		}
		// Single use.
		again, _ := http.Get(body)
		again.Body.Close()
		if again.StatusCode != 404 {
			a.t.Fatalf("download link reused: %d", again.StatusCode)
		}
		return b, data
	}
	a.t.Fatalf("no answer for request %s", reqID)
	return nil, nil
}

func TestStoreAndRetrieveThroughThreeDevices(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("vault")
	devs := []*storagedevice.Device{a.storageDevice(u, "s1"), a.storageDevice(u, "s2"), a.storageDevice(u, "s3")}
	s := join(t, e.WSURL, u.Token)

	wire, key := ciphertext(t, 1000)
	dtk := a.store(u, "invoices", wire)
	got, ev := a.retrieve(s, u.Token, dtk)
	if !bytes.Equal(got, wire) || ev["data_context"] != "invoices" || ev["output_type"] != float64(0) {
		t.Fatalf("retrieved %d bytes, event %v", len(got), ev)
	}
	if _, err := keys.Open(key, got); err != nil {
		t.Fatal("the client cannot decrypt what came back")
	}

	// Every device holds it, sealed: neither the client ciphertext nor the layer-2 blob.
	for _, d := range devs {
		ids, _ := d.List()
		if len(ids) != 1 {
			t.Fatalf("device holds %v", ids)
		}
		path, off, n, err := d.Locate(ids[0])
		if err != nil || n < int64(len(wire)) {
			t.Fatalf("the device's copy: %s %d+%d %v", path, off, n, err)
		}
		// No file of the device holds the client ciphertext.
		filepath.WalkDir(d.Dir(), func(p string, de fs.DirEntry, _ error) error {
			if raw, _ := os.ReadFile(p); !de.IsDir() && bytes.Contains(raw, wire[12:40]) {
				t.Fatalf("device file %s holds the client ciphertext", p)
			}
			return nil
		})
	}
	// The engine's database never holds the payload.
	db, _ := os.ReadFile(filepath.Join(e.DataDir, "privicore.db"))
	wal, _ := os.ReadFile(filepath.Join(e.DataDir, "privicore.db-wal"))
	if bytes.Contains(append(db, wal...), wire[12:40]) {
		t.Fatal("the engine database holds payload bytes")
	}

	// Storage list shows the blob on every device.
	r := a.get("/storage/list-storage-devices", u.Token)
	expect(t, r, 200)
	var list []struct {
		DeviceIdentifier string
		Online           bool
		BlobCount        int
		Bytes            int64
	}
	r.JSON(t, &list)
	if len(list) != 3 {
		t.Fatalf("storage list %s", r.Body)
	}
	for _, d := range list {
		if !d.Online || d.BlobCount != 1 || d.Bytes != int64(len(wire)) {
			t.Fatalf("storage device %+v", d)
		}
	}

	// A corrupted copy on one device and a missing one on another do not fail the read.
	ids, _ := devs[0].List()
	path, off, n, _ := devs[0].Locate(ids[0])
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte{1}, int(n)), off)
	f.Close()
	path, _, _, _ = devs[1].Locate(ids[0])
	os.Remove(path)
	for range 12 { // the device asked first is random: each of them, very likely
		got, _ = a.retrieve(s, u.Token, dtk)
		if !bytes.Equal(got, wire) {
			t.Fatal("read failed with one good copy left")
		}
	}

	// Larger than the inline limit: a single-use download URL and STREAM-READY.
	big, _ := ciphertext(t, 200<<10)
	dtk2 := a.store(u, "big", big)
	got, ev = a.retrieve(s, u.Token, dtk2)
	if !bytes.Equal(got, big) || ev["output_type"] != float64(1) {
		t.Fatalf("big payload: %d bytes, event %v", len(got), ev)
	}
}

func TestExchangeRejections(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("rej")
	wire, _ := ciphertext(t, 100)

	// No storage device.
	tmp := a.reserve(u.Token, "c", 0)
	a.rejected(a.exchange(u.Token, tmp, wire), "storage.no_devices")

	a.storageDevice(u, "s1")
	a.rejected(a.exchange(u.Token, "tmp-nope", wire), "datatoken.reservation_not_found")
	a.succeed(a.exchange(u.Token, tmp, wire))
	a.rejected(a.exchange(u.Token, tmp, wire), "datatoken.reservation_used")

	// Shape errors are 422 at once.
	for name, body := range map[string]map[string]string{
		"short":   {"temporaryTokenSpace": tmp, "data": base64.StdEncoding.EncodeToString(make([]byte, 27))},
		"not b64": {"temporaryTokenSpace": tmp, "data": "***"},
		"huge":    {"temporaryTokenSpace": tmp, "data": base64.StdEncoding.EncodeToString(make([]byte, 1<<20+1))},
		"no data": {"temporaryTokenSpace": tmp},
	} {
		r := a.postJSON("/data-token/exchange-data-for-token", u.Token, body)
		expect(t, r, 422)
		if errs, _ := r.Map(t)["errors"].(map[string]any); errs["data"] == nil {
			t.Fatalf("%s: %s", name, r.Body)
		}
	}
	for _, ttl := range []any{0.5, 1441, "x", -1} {
		expect(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": "c", "ttl": ttl}), 422)
	}
	expect(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": ""}), 422)
	expect(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": strings.Repeat("c", 513)}), 422)
	// configure-file-meta before the exchange finished: 409; unknown: 404.
	tmp2 := a.reserve(u.Token, "c", 0)
	expect(t, a.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": tmp2, "fileName": "f"}), 409)
	expect(t, a.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": "tmp-unknown", "fileName": "f"}), 404)
	expect(t, a.postJSON("/data-token/request-data", u.Token, map[string]any{"token": "dtk-unknown"}), 404)
}

// An exchange that too few devices wrote (--min-acks) is rejected, and the
// devices that did write it remove the blob again.
func TestTooFewWritesRejectAndRemoveTheBlob(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	e := enginetest.Start(t, func(c *engine.Config) { c.MinAcks = 2 })
	a := newAPI(t, e)
	u := a.activeUser("minacks")
	d1 := a.storageDevice(u, "s1")
	id2 := a.approvedDevice(u, "s2") // registered, never started: offline
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id2})))
	tmp := a.reserve(u.Token, "c", 0)
	wire, _ := ciphertext(t, 100)
	a.rejected(a.exchange(u.Token, tmp, wire), "storage.write_failed")
	waitBlobs(t, d1, 0)
	// The reservation is still open: with both devices up it goes through.
	a.startDevice(u, id2, t.TempDir())
	waitSeenOnline(a, u, "s1", "s2")
	a.succeed(a.exchange(u.Token, tmp, wire))
	waitBlobs(t, d1, 1)
}

// An exchange accepted before a crash (recorded pending, its payload only
// in the dead process's memory) is rejected storage.write_failed once the
// engine finds it, never left pending; the reservation stays open.
func TestExchangeWhosePayloadWasLostIsRejected(t *testing.T) {
	t.Parallel() // it mostly waits (a deadline, the outbox's period): let it overlap the others
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("lost")
	d := a.storageDevice(u, "s1")
	tmp := a.reserve(u.Token, "c", 0)
	ctx := context.Background()
	now := time.Now().UTC()
	lost := &privicore.Command{ID: command.NewID(), ProfileID: u.ID, Type: datatoken.CmdExchange, Status: privicore.CommandPending,
		Payload: []byte(`{"tempToken":"` + tmp + `","size":100,"blobId":"lost-blob"}`), CreatedAt: now, UpdatedAt: now}
	if err := e.Store.Write(ctx, func(q privicore.Queries) error { return q.CreateCommand(ctx, lost) }); err != nil {
		t.Fatal(err)
	}
	a.rejected(lost.ID, "storage.write_failed")
	wire, _ := ciphertext(t, 100)
	a.succeed(a.exchange(u.Token, tmp, wire))
	waitBlobs(t, d, 1)
}

func TestReservationExpires(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("exp")
	a.storageDevice(u, "s1")
	cmd := accepted(t, a.postJSON("/data-token/reserve-token-space", u.Token, map[string]any{"context": "c", "ttl": 1}))
	a.succeed(cmd)
	tmp := a.get("/data-token/retrieve-temporary-data-token/"+cmd, u.Token).Map(t)["token"].(string)
	// Age the reservation instead of waiting a minute.
	if _, err := e.Store.Exec(context.Background(), `UPDATE data_tokens SET expires_at = ? WHERE temp_token = ?`, time.Now().Add(-time.Second).UnixNano(), tmp); err != nil {
		t.Fatal(err)
	}
	expect(t, a.get("/data-token/retrieve-temporary-data-token/"+cmd, u.Token), 404)
	wire, _ := ciphertext(t, 50)
	a.rejected(a.exchange(u.Token, tmp, wire), "datatoken.reservation_expired")
}

func TestListUpdateClassifyDeleteAndStatistics(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u, other := a.activeUser("lister"), a.activeUser("other")
	d1 := a.storageDevice(u, "s1")
	d2 := a.storageDevice(u, "s2")
	s := join(t, e.WSURL, u.Token)
	w1, _ := ciphertext(t, 64)
	w2, _ := ciphertext(t, 64)
	t1 := a.store(u, "alpha", w1)
	t2 := a.store(u, "beta", w2)
	// Meta via update-data-token (form) and update-data (JSON objects).
	a.succeed(accepted(t, a.postForm("/data-token/update-data-token", u.Token, url.Values{"token": {t2}, "fileName": {"report"}, "extension": {"pdf"}})))
	a.succeed(accepted(t, a.postJSON("/data-token/update-data", u.Token, map[string]any{"dataToken": t1, "meta": map[string]any{"data": map[string]any{"type": "invoice"}}})))
	a.succeed(accepted(t, a.postJSON("/data-token/configure-information-security-risk-meta", u.Token, map[string]any{"token": t1, "classification": "secret", "label": "L", "handling": "H", "owner": "ops"})))
	expect(t, a.postJSON("/data-token/configure-information-security-risk-meta", u.Token, map[string]any{"token": t1, "label": "L"}), 422)

	list := func(query string) (items []map[string]any, meta map[string]any) {
		r := a.get("/data-token/list-data-tokens"+query, u.Token)
		expect(t, r, 200)
		var page struct {
			Items []map[string]any
			Meta  map[string]any
		}
		r.JSON(t, &page)
		return page.Items, page.Meta
	}
	items, meta := list("")
	if len(items) != 2 || meta["total"] != float64(2) || meta["perPage"] != float64(25) {
		t.Fatalf("list %v %v", items, meta)
	}
	for q, want := range map[string]string{
		"?filters[context]=alpha":                                 t1,
		"?filters[token]=" + t2:                                   t2,
		"?filters[meta.file.fileName]=report":                     t2,
		"?filters[meta.file.extension]=pdf":                       t2,
		"?filters[meta.data.type]=invoice":                        t1,
		"?filters[context]=alpha&filters[meta.data.type]=invoice": t1,
	} {
		items, _ := list(q)
		if len(items) != 1 || items[0]["token"] != want {
			t.Fatalf("%s: %v", q, items)
		}
	}
	items, meta = list("?page=2&perPage=1")
	if len(items) != 1 || meta["count"] != float64(1) || meta["page"] != float64(2) || items[0]["token"] != t2 {
		t.Fatalf("paging %v %v", items, meta)
	}
	expect(t, a.get("/data-token/list-data-tokens?perPage=101", u.Token), 422)
	items, _ = list("?filters[token]=" + t1)
	risk, _ := items[0]["meta"].(map[string]any)["information_security_risk"].(map[string]any)
	if risk["classification"] != "secret" || risk["owner"] != "ops" {
		t.Fatalf("risk meta %v", items[0]["meta"])
	}
	// Another profile sees nothing of it.
	r := a.get("/data-token/list-data-tokens", other.Token)
	if !strings.Contains(string(r.Body), `"total":0`) {
		t.Fatalf("other profile lists %s", r.Body)
	}
	expect(t, a.postJSON("/data-token/request-data", other.Token, map[string]string{"token": t1}), 404)
	expect(t, a.postJSON("/data-token/delete-data", other.Token, map[string]string{"token": t1}), 404)

	// A new payload replaces the old one on every device.
	w3, _ := ciphertext(t, 80)
	a.succeed(accepted(t, a.postJSON("/data-token/update-data", u.Token, map[string]any{"dataToken": t1, "data": base64.StdEncoding.EncodeToString(w3)})))
	if got, _ := a.retrieve(s, u.Token, t1); !bytes.Equal(got, w3) {
		t.Fatal("update-data did not replace the payload")
	}
	waitBlobs(t, d1, 2)
	waitBlobs(t, d2, 2)

	// Delete: gone at once for reads, then from every device.
	a.succeed(accepted(t, a.postJSON("/data-token/delete-data", u.Token, map[string]string{"token": t1})))
	expect(t, a.postJSON("/data-token/request-data", u.Token, map[string]string{"token": t1}), 404)
	waitBlobs(t, d1, 1)
	waitBlobs(t, d2, 1)

	r = a.get("/data-token/transaction-count-statistics?from="+time.Now().UTC().Format("2006-01-02"), u.Token)
	expect(t, r, 200)
	var st struct {
		Exchange, Request, Update, Delete int
		ByDay                             []map[string]any
	}
	json.Unmarshal(r.Body, &st)
	if st.Exchange != 2 || st.Request != 1 || st.Update != 4 || st.Delete != 1 || len(st.ByDay) != 1 {
		t.Fatalf("statistics %s", r.Body)
	}
	expect(t, a.get("/data-token/transaction-count-statistics?from=yesterday", u.Token), 422)
}

func waitBlobs(t *testing.T, d *storagedevice.Device, n int) {
	t.Helper()
	waitBlobsFor(t, d, n, 10*time.Second)
}

// waitBlobsFor is waitBlobs with its own patience (catch-up is retried
// every 2 s; a loaded CI machine needs more).
func waitBlobsFor(t *testing.T, d *storagedevice.Device, n int, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ids, _ := d.List()
		if len(ids) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device holds %d blobs, want %d", len(ids), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOfflineDeviceCatchesUpAndSync(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("offline")
	d1 := a.storageDevice(u, "s1")
	id2 := a.approvedDevice(u, "s2")
	a.succeed(accepted(t, a.postJSON("/storage/register", u.Token, map[string]string{"deviceIdentifier": id2})))
	dir2 := t.TempDir()
	// s2 is offline while three payloads are stored.
	tokens := map[string][]byte{}
	for range 3 {
		w, _ := ciphertext(t, 100)
		tokens[a.store(u, "c", w)] = w
	}
	d2 := a.startDevice(u, id2, dir2)
	waitBlobs(t, d2, 3)
	// With s1 gone, s2 alone serves every payload.
	d1.Kill()
	s := join(t, e.WSURL, u.Token)
	for dtk, w := range tokens {
		if got, _ := a.retrieve(s, u.Token, dtk); !bytes.Equal(got, w) {
			t.Fatal("caught-up device served a wrong payload")
		}
	}
	var id1 string
	for id, d := range a.devices(u.Token) {
		if d.Name == "s1" {
			id1 = id
		}
	}
	a.startDevice(u, id1, d1.Dir()) // s1 back, with its files

	// Sync: a blob lost on s2 (removed behind the engine's back) is copied
	// back from s1.
	ids, _ := d2.List()
	m := nats.NewMsg(protocol.DeviceSubject(e.Bus.Prefix(), id2) + ".to." + protocol.OpDelete)
	m.Header.Set(protocol.HeaderBlob, ids[0])
	if _, err := e.Bus.Conn().RequestMsg(m, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitBlobs(t, d2, 2)
	cmd := accepted(t, a.postJSON("/storage/sync-device", u.Token, map[string]string{"deviceIdentifier": id2}))
	if body := a.succeed(cmd); body != `{"copied":1,"failed":0}` {
		t.Fatalf("sync ack %q", body)
	}
	waitBlobs(t, d2, 3)
	d2.Kill()
	time.Sleep(400 * time.Millisecond) // the bus notices, and its connection list is refreshed
	a.rejected(accepted(t, a.postJSON("/storage/synchronize", u.Token, map[string]string{"deviceIdentifier": id2})), "storage.device_offline")
}

func TestExchangedTokenNeverMadePermanentIsRemovedFromDevices(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("lapsed")
	d := a.storageDevice(u, "s1")
	tmp := a.reserve(u.Token, "c", 1)
	wire, _ := ciphertext(t, 100)
	a.succeed(a.exchange(u.Token, tmp, wire))
	waitBlobs(t, d, 1)
	// Kept while the reservation lives.
	if err := e.DataTokens.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitBlobs(t, d, 1)
	if _, err := e.Store.Exec(context.Background(), `UPDATE data_tokens SET expires_at = ? WHERE temp_token = ?`, time.Now().Add(-time.Second).UnixNano(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := e.DataTokens.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitBlobs(t, d, 0)
	expect(t, a.postJSON("/data-token/configure-file-meta", u.Token, map[string]any{"token": tmp, "fileName": "late"}), 404)
}

// A request is written once, with its outcome, before its data leaves: when
// the 202 comes the command has already succeeded, and the data follows on
// the socket.
func TestRequestRecordedBeforeItsDataLeaves(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("audit")
	a.storageDevice(u, "s1")
	s := join(t, e.WSURL, u.Token)
	wire, _ := ciphertext(t, 500)
	dtk := a.store(u, "audit", wire)

	r := a.postJSON("/data-token/request-data", u.Token, map[string]string{"token": dtk})
	expect(t, r, 202)
	cmd, reqID := r.Header.Get("X-DPT-CAB-ID"), r.Header.Get("X-DPT-CAB-REQUEST-ID")
	if st := a.get("/utility/request-command-id-status/"+cmd, u.Token).Map(t); st["command_status"] != float64(2) {
		t.Fatalf("request-data answered 202 with the command %v", st)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		m := s.read(time.Until(deadline))
		if m == nil {
			break
		}
		if data, _ := m["data"].(map[string]any); data["type"] == "X-DPT-CAB-REQUEST-ID" && data["id"] == reqID {
			if data["command_status"] != float64(2) || data["body"] != base64.StdEncoding.EncodeToString(wire) {
				t.Fatalf("data event %v", data)
			}
			return
		}
	}
	t.Fatal("no data event")
}
