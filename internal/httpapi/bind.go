package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/privicore/privicore"
)

// params is a request's fields, whatever the encoding: JSON, urlencoded or
// multipart form, with the query string as a fallback. Every POST accepts
// all three with the same field names (spec §0).
type params struct {
	json  map[string]any
	form  url.Values
	query url.Values
}

// maxMultipartMemory bounds multipart parsing held in memory.
const maxMultipartMemory = 4 << 20

// bind reads r's body (at most limit bytes) into params. A malformed body
// is EINVALID; an oversized one too.
func bind(w http.ResponseWriter, r *http.Request, limit int64) (*params, error) {
	p := &params{query: r.URL.Query()}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return p, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		p.form = r.PostForm
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
			return nil, bodyError(err)
		}
		p.form = url.Values(r.MultipartForm.Value)
	default:
		// JSON, declared or not; an empty body (or null) is no fields.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return p, nil
		}
		if m, ok := flatObject(body); ok {
			p.json = m
			return p, nil
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
			return nil, privicore.Invalid("body", "must be a JSON object, a urlencoded form or a multipart form")
		}
		p.json = m
	}
	if err := p.checkKinds(); err != nil {
		return nil, err
	}
	return p, nil
}

// flatObject decodes the common body in one pass: a JSON object whose
// values are all strings without escapes (an exchange's base64 payload is
// most of the bytes a store sends). It reports false for anything else,
// which encoding/json then decodes; where it succeeds the result is the one
// encoding/json would give.
func flatObject(b []byte) (map[string]any, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	m := map[string]any{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		if i = skipSpace(b, j); i >= len(b) || b[i] != ':' {
			return nil, false
		}
		val, j, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return nil, false
		}
		m[key] = val
		if i = skipSpace(b, j); i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// plainString reads a JSON string at b[i] that needs no decoding (no
// escapes, no control characters, valid UTF-8); end is just past it.
func plainString(b []byte, i int) (s string, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	n := bytes.IndexByte(b[i+1:], '"')
	if n < 0 {
		return "", 0, false
	}
	v := b[i+1 : i+1+n]
	ascii := true
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return "", 0, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(v) {
		return "", 0, false
	}
	return string(v), i + n + 2, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// errBodyTimeout is bind's error for a body that did not arrive in time
// (see bodyDeadline): the answer is 408 and the connection is closed.
var errBodyTimeout = &privicore.Error{Code: codeRequestTimeout, Message: "the request body did not arrive in time",
	Fields: map[string][]string{"body": {"did not arrive in time"}}}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return privicore.Invalid("body", fmt.Sprintf("must be at most %d bytes", tooBig.Limit))
	}
	if errors.Is(err, errSlowBody) || errors.Is(err, os.ErrDeadlineExceeded) {
		return errBodyTimeout
	}
	return privicore.Invalid("body", "could not be read: "+err.Error())
}

// raw returns the first present value among names: a JSON value, or a form
// or query string.
func (p *params) raw(names ...string) (any, bool) {
	for _, n := range names {
		if p.json != nil {
			if v, ok := p.json[n]; ok && v != nil {
				return v, true
			}
		}
		if p.form != nil {
			if vs, ok := p.form[n]; ok && len(vs) > 0 {
				return vs[0], true
			}
		}
		if vs, ok := p.query[n]; ok && len(vs) > 0 {
			return vs[0], true
		}
	}
	return nil, false
}

// String returns the first present field among names as text (numbers and
// booleans in JSON are turned to text; arrays and objects count as absent).
func (p *params) String(names ...string) string {
	v, ok := p.raw(names...)
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// Int returns the first present field among names as an integer; ok is
// false when absent, err set when present but not an integer.
func (p *params) Int(names ...string) (n int64, ok bool, err error) {
	s := strings.TrimSpace(p.String(names...))
	if s == "" {
		if _, present := p.raw(names...); present {
			return 0, true, errors.New("must be an integer")
		}
		return 0, false, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, errors.New("must be an integer")
	}
	return n, true, nil
}

// Strings returns an array field: a JSON array, repeated `name[]=` or
// `name=` form fields, or one comma-separated value.
func (p *params) Strings(name string) []string {
	if p.json != nil {
		switch v := p.json[name].(type) {
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				switch e := e.(type) {
				case string:
					out = append(out, e)
				case json.Number:
					out = append(out, e.String())
				}
			}
			return out
		case string:
			return splitComma(v)
		}
	}
	for _, src := range []url.Values{p.form, p.query} {
		if src == nil {
			continue
		}
		if vs := src[name+"[]"]; len(vs) > 0 {
			return vs
		}
		if vs := src[name]; len(vs) > 1 {
			return vs
		} else if len(vs) == 1 {
			return splitComma(vs[0])
		}
	}
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Object returns an object field: a JSON object, a JSON string holding one
// (forms), or bracketed form keys (`meta[file][fileName]=…`). present is
// false when the field is absent; a present field that is no object is an
// error.
func (p *params) Object(name string) (obj map[string]any, present bool, err error) {
	if p.json != nil {
		if v, ok := p.json[name]; ok && v != nil {
			if m, ok := v.(map[string]any); ok {
				return m, true, nil
			}
			if s, ok := v.(string); ok {
				return parseObject(s)
			}
			return nil, true, errors.New("must be an object")
		}
	}
	for _, src := range []url.Values{p.form, p.query} {
		if src == nil {
			continue
		}
		if vs, ok := src[name]; ok && len(vs) > 0 {
			return parseObject(vs[0])
		}
		out := map[string]any{}
		for key, vs := range src {
			if !strings.HasPrefix(key, name+"[") || len(vs) == 0 {
				continue
			}
			path := strings.Split(strings.TrimSuffix(strings.TrimPrefix(key, name+"["), "]"), "][")
			cur := out
			for i, part := range path {
				if part == "" {
					return nil, true, errors.New("has an empty key")
				}
				if i == len(path)-1 {
					cur[part] = vs[0]
					break
				}
				next, ok := cur[part].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur[part] = next
				}
				cur = next
			}
		}
		if len(out) > 0 {
			return out, true, nil
		}
	}
	return nil, false, nil
}

func parseObject(s string) (map[string]any, bool, error) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, true, errors.New("must be a JSON object")
	}
	return m, true, nil
}

// Has reports whether any of names is present.
func (p *params) Has(names ...string) bool {
	for _, n := range names {
		if _, ok := p.raw(n); ok {
			return true
		}
		if p.json != nil {
			if _, ok := p.json[n]; ok {
				return true
			}
		}
		for _, src := range []url.Values{p.form, p.query} {
			if _, ok := src[n+"[]"]; ok {
				return true
			}
		}
	}
	return false
}
