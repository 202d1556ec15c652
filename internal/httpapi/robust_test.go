package httpapi_test

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/privicore/privicore/internal/enginetest"
)

// TestNoRouteAnswers500 sends every route in routes.go bad input — no
// token, a malformed body, fields of the wrong types, nonsense ids, garbage
// Basic credentials — and expects a 4xx each time (never a 5xx or a hang).
func TestNoRouteAnswers500(t *testing.T) {
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`handle\("([A-Z]+) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 80 {
		t.Fatalf("found only %d routes in routes.go", len(routes))
	}
	e := enginetest.Start(t)
	a := newAPI(t, e)
	u := a.activeUser("robust")
	param := regexp.MustCompile(`\{[^}]+\}`)
	bodies := []struct{ contentType, body string }{
		{"application/json", "{"},
		{"application/json", `{"deviceIdentifier":5,"token":[1],"applicationId":{},"poolId":true,"name":[],"scopes":7,"strategy":{},` +
			`"quorumSize":"many","timeLimit":-1,"numberOfAttempts":1e40,"configuration":"x","applyingEventIds":{},"data":"%%%",` +
			`"ttl":"soon","meta":5,"policyTemplateId":[],"votingConfigurationId":9,"deviceIdentifiers":{"a":1},"percentageRequired":"x"}`},
		{"application/x-www-form-urlencoded", "a=%zz&meta[=1&deviceIdentifier=../../etc&scopes[]=root"},
		{"multipart/form-data; boundary=x", "--x\r\nnot a part"},
		{"text/plain", strings.Repeat("A", 4096)},
	}
	for _, r := range routes {
		method, path := r[1], param.ReplaceAllString(r[2], "nonexistent-id")
		if path == "/ws" {
			continue // the WebSocket upgrade has its own tests
		}
		for _, tok := range []string{"", "T-forged", u.Token} {
			for _, b := range bodies {
				req, _ := http.NewRequest(method, a.url+path+"?auth=x&client_id=%zz&scope[]=q&nonce=", strings.NewReader(b.body))
				req.Header.Set("Content-Type", b.contentType)
				if tok != "" {
					req.Header.Set("X-DPT-AUTHORIZATION", tok)
				}
				req.Header.Set("Authorization", "Basic !!!not-base64")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				res.Body.Close()
				if res.StatusCode >= 500 {
					t.Errorf("%s %s (token %v, %s %.30q): %d", method, path, tok != "", b.contentType, b.body, res.StatusCode)
				}
			}
		}
	}
}
