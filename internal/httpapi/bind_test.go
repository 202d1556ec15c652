package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// decodeStd is what bind falls back to: encoding/json, numbers kept as text.
func decodeStd(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errTrailing
	}
	return m, nil
}

var errTrailing = jsonError("trailing data")

type jsonError string

func (e jsonError) Error() string { return string(e) }

// The one-pass decoder takes the bodies a store sends and gives exactly
// what encoding/json gives.
func TestFlatObjectTakesPlainBodies(t *testing.T) {
	for _, body := range []string{
		`{}`,
		` { } `,
		`{"temporaryToken":"tmp-abc","data":"` + strings.Repeat("QUJD", 400) + `"}`,
		"{\n\t\"a\" : \"b\" ,\r\n \"c\":\"\"}\n",
		`{"name":"Zoë ✓ 日本"}`,
		`{"a":"1","a":"2"}`, // the last one wins, as in encoding/json
	} {
		got, ok := flatObject([]byte(body))
		if !ok {
			t.Errorf("%q: declined", body)
			continue
		}
		want, err := decodeStd([]byte(body))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v, want %v", body, got, want)
		}
	}
}

// Anything beyond flat strings without escapes goes to encoding/json.
func TestFlatObjectDeclinesTheRest(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":"b"`, `{"a":"b",}`, `{"a":"b"}x`, `{"a":"b"}{}`,
		`{"a":1}`, `{"a":true}`, `{"a":null}`, `{"a":{"b":"c"}}`, `{"a":["b"]}`,
		`{"a":"b\"c"}`, `{"a":"\u00e9"}`, `{"a\n":"b"}`, "{\"a\":\"b\tc\"}", "{\"a\":\"\xff\"}",
		`{a:"b"}`, `{"a":"b";"c":"d"}`,
	} {
		if m, ok := flatObject([]byte(body)); ok {
			t.Errorf("%q: took it as %v", body, m)
		}
	}
}

// Whatever the one-pass decoder accepts, encoding/json decodes the same.
func FuzzFlatObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"a":"b","c":"d"}`, `{"a":"b\n"}`, `{"a":1}`, "{\"\xc3\xa9\":\"x\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := flatObject(b)
		if !ok {
			return
		}
		want, err := decodeStd(b)
		if err != nil {
			t.Fatalf("%q: accepted, but encoding/json says %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %v, want %v", b, got, want)
		}
	})
}

// BenchmarkBindExchange measures binding an exchange body (1 KiB payload).
func BenchmarkBindExchange(b *testing.B) {
	body := []byte(`{"temporaryToken":"tmp-0123456789abcdefghijklmnopqrstuv","data":"` + strings.Repeat("QUJD", 376) + `"}`)
	b.SetBytes(int64(len(body)))
	for range b.N {
		r := httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if _, err := bind(httptest.NewRecorder(), r, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
