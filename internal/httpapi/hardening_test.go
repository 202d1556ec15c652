package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/enginetest"
	"github.com/privicore/privicore/internal/httpapi"
)

// route is one line of routes.go.
type route struct{ method, path string }

// routesOf reads every route from routes.go, with each {param} replaced by
// a value.
func routesOf(t *testing.T) []route {
	t.Helper()
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile(`handle\("([A-Z]+) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(found) < 80 {
		t.Fatalf("found only %d routes in routes.go", len(found))
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var out []route
	for _, f := range found {
		p := param.ReplaceAllString(f[2], "some-id")
		if strings.HasSuffix(p, "/") {
			p += "x" // a prefix route: /downstream/, /upstream/
		}
		out = append(out, route{f[1], p})
	}
	return out
}

// errorOf decodes a JSON error body.
type errorOf struct {
	Error  string              `json:"error"`
	Errors map[string][]string `json:"errors"`
}

// Every POST route rejects a body it cannot use with 422 (errors.body, or
// errors.<field> for a field of the wrong type), also the routes that read
// no field (revoke, token expiry) and whatever the field: a number where a
// string id belongs, an object or array as a role, a string list given an
// object. No such body is ever answered 2xx or 5xx.
func TestEveryPOSTRouteRejectsUnusableBodies(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("strict")
	oversize := append(append([]byte(`{"name":"`), bytes.Repeat([]byte("A"), httpapi.DefaultMaxBody)...), `"}`...)
	type bad struct {
		name, contentType string
		body              []byte
		field             string // the errors key expected
	}
	bads := []bad{
		{"invalid JSON", "application/json", []byte(`{"token":`), "body"},
		{"trailing data", "application/json", []byte(`{"token":"x"} {}`), "body"},
		{"not an object", "application/json", []byte(`["token"]`), "body"},
		{"undeclared garbage", "", []byte("token=x&&%zz"), "body"},
		{"bad form", "application/x-www-form-urlencoded", []byte("token=%zz"), "body"},
		{"number as an id", "application/json", []byte(`{"deviceIdentifier":12345}`), "deviceIdentifier"},
		{"number as a token", "application/json", []byte(`{"token":5}`), "token"},
		{"object as a role", "application/json", []byte(`{"role":{"storage":true}}`), "role"},
		{"array as a role", "application/json", []byte(`{"role":["storage"]}`), "role"},
		{"bool as a name", "application/json", []byte(`{"name":true}`), "name"},
		{"object as an integer", "application/json", []byte(`{"ttl":{}}`), "ttl"},
		{"object as a list", "application/json", []byte(`{"scope":{"a":1}}`), "scope"},
		{"number in a list", "application/json", []byte(`{"deviceIdentifiers":["a",7]}`), "deviceIdentifiers"},
		{"array as meta", "application/json", []byte(`{"meta":[1]}`), "meta"},
		{"form array as a role", "application/x-www-form-urlencoded", []byte("role[]=storage"), "role"},
		{"oversize", "application/json", oversize, "body"},
	}
	posts := 0
	for _, r := range routesOf(t) {
		if r.method != http.MethodPost || strings.HasPrefix(r.path, "/upstream/") {
			continue // the streamed upload reads raw bytes (TestSlowUploadIsDropped…)
		}
		posts++
		for _, b := range bads {
			req, _ := http.NewRequest(r.method, a.url+r.path, bytes.NewReader(b.body))
			if b.contentType != "" {
				req.Header.Set("Content-Type", b.contentType)
			}
			req.Header.Set("X-DPT-AUTHORIZATION", u.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s, %s: %v", r.method, r.path, b.name, err)
			}
			var body errorOf
			err = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnprocessableEntity || err != nil || len(body.Errors[b.field]) == 0 {
				t.Errorf("%s %s, %s: %d %+v (decode: %v), want 422 with errors.%s", r.method, r.path, b.name, res.StatusCode, body, err, b.field)
			}
		}
	}
	if posts < 50 {
		t.Fatalf("only %d POST routes", posts)
	}
}

// A known path with a method it does not take is 405 with Allow and the
// JSON error body; unknown paths stay a JSON 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := enginetest.Start(t)
	a := newAPI(t, e)
	methods := map[string][]string{}
	for _, r := range routesOf(t) {
		methods[r.path] = append(methods[r.path], r.method)
	}
	for path, ms := range methods {
		for _, m := range []string{http.MethodDelete, http.MethodPut, http.MethodPost, http.MethodGet} {
			if slices.Contains(ms, m) {
				continue
			}
			r := a.do(m, path, "", "", nil)
			var body errorOf
			if r.Status != http.StatusMethodNotAllowed || json.Unmarshal(r.Body, &body) != nil || body.Error != "method_not_allowed" {
				t.Errorf("%s %s: %d %s, want 405 with a JSON error", m, path, r.Status, r.Body)
				continue
			}
			allow := strings.Split(r.Header.Get("Allow"), ", ")
			for _, want := range ms {
				if !slices.Contains(allow, want) {
					t.Errorf("%s %s: Allow %q lacks %s", m, path, r.Header.Get("Allow"), want)
				}
			}
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		r := a.do(m, "/no/such/endpoint", "", "application/json", strings.NewReader("{}"))
		var body errorOf
		if r.Status != http.StatusNotFound || json.Unmarshal(r.Body, &body) != nil || body.Error != "not_found" || r.Header.Get("Allow") != "" {
			t.Errorf("%s unknown path: %d %s %v, want the JSON 404", m, r.Status, r.Body, r.Header)
		}
	}
}

// pacedReader yields n bytes of chunk every gap, total bytes in all.
type pacedReader struct {
	chunk, left int
	gap         time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	time.Sleep(p.gap)
	n := min(len(b), p.chunk, p.left)
	for i := range b[:n] {
		b[i] = byte(i)
	}
	p.left -= n
	return n, nil
}

// The streamed upload has no overall body deadline, only the progress
// rule: a slow but steady upload that takes longer than the (here tiny)
// deadline of other bodies succeeds, and one that trickles is cut off with
// errors.body and a closed connection.
func TestStreamedUploadKeepsTheProgressRuleOnly(t *testing.T) {
	e := enginetest.Start(t, func(c *engine.Config) {
		c.Limits.Body = httpapi.BodyLimits{Timeout: 300 * time.Millisecond, MinRate: 4096, RateWindow: 300 * time.Millisecond}
	})
	a := newAPI(t, e)
	u := a.activeUser("slow-upload")
	a.storageDevice(u, "s1")

	_, stream := a.reserveStream(u.Token)
	start := time.Now()
	id := accepted(t, a.upload(stream, &pacedReader{chunk: 8 << 10, left: 200 << 10, gap: 40 * time.Millisecond}))
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the paced upload took %v: not past the body deadline", took)
	}
	if dtk := a.succeed(id); !strings.HasPrefix(dtk, "dtk-") {
		t.Fatalf("ack body %q", dtk)
	}

	_, stream = a.reserveStream(u.Token)
	target, _ := url.Parse(stream)
	c, err := net.Dial("tcp", target.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n", target.RequestURI())
	go func() { // 20 bytes a second
		for range 2000 {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a trickling upload: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "did not arrive in time") {
		t.Fatalf("trickling upload: %d %s, want 408 about the body", res.StatusCode, b)
	}
	if _, err := br.ReadByte(); err != io.EOF && (err == nil || !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("connection still open after a trickling upload: %v", err)
	}
}
