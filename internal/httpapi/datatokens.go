package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/datatoken"
	"github.com/privicore/privicore/internal/fanout"
)

// ---- §7 storage ----

func (s *Server) listStorageDevices(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ds, err := s.Storage.Devices(ctx, authFrom(r).Profile.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]api.StorageDevice, 0, len(ds))
	for _, d := range ds {
		n, bytes, err := s.Storage.Stats(ctx, d.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, api.StorageDevice{Device: s.Devices.RecordOf(d), BlobCount: n, Bytes: bytes})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) syncStorageDevice(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		id := deviceID(p)
		if err := checkDeviceID(id); err != nil {
			return nil, err
		}
		return s.Commands.Submit(r.Context(), authFrom(r).Profile.ID, fanout.CmdSync, fanout.SyncPayload(id))
	})
}

// ---- §8 data tokens ----

func (s *Server) reserveTokenSpace(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	ttl, _, err := p.Int("ttl")
	if err != nil {
		s.fail(w, r, privicore.Invalid("ttl", "must be 1 to 1440 minutes"))
		return
	}
	if ttl < 0 || ttl > 1e6 {
		ttl = -1
	}
	meta, _, err := p.Object("meta")
	if err != nil {
		s.fail(w, r, privicore.Invalid("meta", err.Error()))
		return
	}
	a := authFrom(r)
	c, err := s.DataTokens.Reserve(r.Context(), a.Profile.ID, a.Application(), p.String("context"), int(ttl), meta)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) retrieveTemporaryDataToken(w http.ResponseWriter, r *http.Request) {
	tok, stream, err := s.DataTokens.TemporaryToken(r.Context(), authFrom(r).Profile.ID, r.PathValue("commandId"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Reservation{Token: tok, Stream: stream})
}

func (s *Server) exchangeDataForToken(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.DataTokens.Exchange(r.Context(), authFrom(r).Profile.ID, p.String("temporaryTokenSpace", "temporaryToken", "token"), p.String("data"))
	})
}

func (s *Server) configureFileMeta(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	m := datatoken.FileMeta{Token: p.String("token"), FileName: p.String("fileName"), Extension: p.String("extension"),
		Context: p.String("context"), Path: p.String("path")}
	if size, present, err := p.Int("size"); err != nil {
		s.fail(w, r, privicore.Invalid("size", "must be an integer ≥ 0"))
		return
	} else if present {
		m.Size = &size
	}
	tok, err := s.DataTokens.ConfigureFileMeta(r.Context(), authFrom(r).Profile.ID, m)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PermanentToken{Token: tok})
}

func (s *Server) requestData(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	c, reqID, err := s.DataTokens.RequestData(r.Context(), authFrom(r).Profile.ID, p.String("token", "dataToken"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("X-DPT-CAB-ID", c.ID)
	w.Header().Set("X-DPT-CAB-REQUEST-ID", reqID)
	writeJSON(w, http.StatusAccepted, api.DataRequest{CommandID: c.ID, RequestID: reqID})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	tr, err := s.DataTokens.Download(r.Context(), r.URL.Query().Get("auth"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(tr.Size, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := tr.WriteTo(w); err != nil {
		// The status is out: all that is left is to cut the response short.
		s.Logger.Warn("download interrupted", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// upload takes a streamed payload: the raw ciphertext body, any size.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	body := &readErrs{r: r.Body}
	c, err := s.DataTokens.Upload(r.Context(), r.URL.Query().Get("auth"), body)
	if err != nil {
		if errors.Is(body.err, errSlowBody) {
			err = errBodyTimeout // 408, as for every other body that stalls
		}
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) configureRiskMeta(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	fields := map[string]any{}
	for _, src := range []map[string]any{p.json} {
		for k, v := range src {
			fields[k] = v
		}
	}
	for k, vs := range p.form {
		if len(vs) > 0 {
			fields[k] = vs[0]
		}
	}
	token := p.String("token")
	delete(fields, "token")
	c, err := s.DataTokens.ConfigureRisk(r.Context(), authFrom(r).Profile.ID, token, fields)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) listDataTokens(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := privicore.DataTokenFilter{Context: q.Get("filters[context]"), Token: q.Get("filters[token]"),
		FileName: q.Get("filters[meta.file.fileName]"), Extension: q.Get("filters[meta.file.extension]"), DataType: q.Get("filters[meta.data.type]")}
	for name, dst := range map[string]*int{"page": &f.Page, "perPage": &f.PerPage} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				s.fail(w, r, privicore.Invalid(name, "must be a positive integer"))
				return
			}
			*dst = n
		}
	}
	page, err := s.DataTokens.List(r.Context(), authFrom(r).Profile.ID, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) updateData(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		meta, _, err := p.Object("meta")
		if err != nil {
			return nil, privicore.Invalid("meta", err.Error())
		}
		return s.DataTokens.Update(r.Context(), authFrom(r).Profile.ID, p.String("dataToken", "token"), p.String("data"), meta)
	})
}

func (s *Server) updateDataToken(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	m := datatoken.MetaUpdate{Token: p.String("token", "dataToken")}
	for name, dst := range map[string]**string{"fileName": &m.FileName, "extension": &m.Extension, "context": &m.Context, "path": &m.Path} {
		if p.Has(name) {
			v := p.String(name)
			*dst = &v
		}
	}
	c, err := s.DataTokens.UpdateMeta(r.Context(), authFrom(r).Profile.ID, m)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) deleteData(w http.ResponseWriter, r *http.Request) {
	s.accept(w, r, func(p *params) (*privicore.Command, error) {
		return s.DataTokens.Delete(r.Context(), authFrom(r).Profile.ID, p.String("token", "dataToken"))
	})
}

func (s *Server) transactionStatistics(w http.ResponseWriter, r *http.Request) {
	var from, to time.Time
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := r.URL.Query().Get(name); v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				if t, err = time.Parse(time.RFC3339, v); err != nil {
					s.fail(w, r, privicore.Invalid(name, "must be a date (YYYY-MM-DD)"))
					return
				}
			}
			*dst = t
		}
	}
	st, err := s.DataTokens.Statistics(r.Context(), authFrom(r).Profile.ID, from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// readErrs remembers the first error its reader returned other than EOF,
// so that a handler can tell why a consumer of the body gave up.
type readErrs struct {
	r   io.Reader
	err error
}

func (b *readErrs) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}
