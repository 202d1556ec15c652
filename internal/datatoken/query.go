package datatoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
)

// ---- download URLs ----

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// downloadURL issues a single-use download URL for a blob (5 minutes).
func (s *Service) downloadURL(ctx context.Context, profileID, blobID string) (string, error) {
	secret := randomToken("dl-")
	now := s.now()
	t := &privicore.Token{ID: hashSecret(secret), ProfileID: profileID, Kind: privicore.TokenDownload, Ref: blobID,
		CreatedAt: now, ExpiresAt: now.Add(DownloadTTL)}
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.CreateToken(ctx, t) }); err != nil {
		return "", err
	}
	return s.cfg.PublicURL() + "/downstream/?auth=" + url.QueryEscape(secret), nil
}

// Download spends a download secret and returns the transfer of the
// layer-1 payload. A used, expired or unknown secret is ENOTFOUND.
func (s *Service) Download(ctx context.Context, secret string) (*Transfer, error) {
	missing := privicore.Errorf(privicore.ENOTFOUND, "download link unknown, used or expired")
	if secret == "" || len(secret) > 256 {
		return nil, missing
	}
	id := hashSecret(secret)
	t, err := s.store.FindToken(ctx, id)
	if err != nil || t.Kind != privicore.TokenDownload || !t.Valid(s.now()) || !t.UsedAt.IsZero() {
		return nil, missing
	}
	if err := s.store.Write(ctx, func(q privicore.Queries) error { return q.UseToken(ctx, id, s.now()) }); err != nil {
		return nil, missing
	}
	dt, err := s.store.FindProfileDataTokenByBlob(ctx, t.ProfileID, t.Ref)
	if err != nil {
		return nil, missing
	}
	return s.transfer(ctx, dt)
}

// ---- listing ----

// Item is a data token in a listing.
type Item = api.DataToken

// Page is a page of a listing.
type Page = api.DataTokenPage

// List returns a page of the profile's exchanged tokens.
func (s *Service) List(ctx context.Context, profileID string, f privicore.DataTokenFilter) (*Page, error) {
	v := privicore.ValidationErrors{}
	if f.Page == 0 {
		f.Page = 1
	}
	if f.PerPage == 0 {
		f.PerPage = 25
	}
	if f.Page < 1 {
		v.Add("page", "must be ≥ 1")
	}
	if f.PerPage < 1 || f.PerPage > 100 {
		v.Add("perPage", "must be 1 to 100")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	tokens, total, err := s.store.ListDataTokens(ctx, profileID, f)
	if err != nil {
		return nil, err
	}
	p := &Page{Items: make([]Item, 0, len(tokens))}
	for _, t := range tokens {
		tok := t.Token
		if tok == "" {
			tok = t.TempToken
		}
		meta := map[string]any{"file": map[string]any{}, "information_security_risk": map[string]any{}, "data": map[string]any{}}
		for k, v := range t.Meta {
			meta[k] = v
		}
		p.Items = append(p.Items, Item{Token: tok, Context: t.Context, Meta: meta, Application: t.Application,
			CreatedAt: t.CreatedAt.Truncate(time.Second), UpdatedAt: t.UpdatedAt.Truncate(time.Second)})
	}
	p.Meta.Count, p.Meta.Page, p.Meta.PerPage, p.Meta.Total = len(p.Items), f.Page, f.PerPage, total
	return p, nil
}

// ---- statistics ----

// DayCount is one day of the statistics.
type DayCount = api.DayCount

// add counts n transactions of kind on d.
func add(d *DayCount, kind string, n int) {
	switch kind {
	case "exchange":
		d.Exchange += n
	case "request":
		d.Request += n
	case "update":
		d.Update += n
	case "delete":
		d.Delete += n
	}
}

// Stats are the transaction counts of a profile.
type Stats = api.TransactionStatistics

// Statistics counts the profile's succeeded exchanges, requests, updates and
// deletes in [from, to] (dates, UTC; zero: unbounded).
func (s *Service) Statistics(ctx context.Context, profileID string, from, to time.Time) (*Stats, error) {
	if to.IsZero() {
		to = s.now().Add(24 * time.Hour)
	} else {
		to = to.Add(24 * time.Hour) // inclusive of the last day
	}
	if !from.IsZero() && !from.Before(to) {
		return nil, privicore.Invalid("from", "must not be after to")
	}
	kinds := map[string]string{CmdExchange: "exchange", CmdRequest: "request", CmdUpdate: "update", CmdMeta: "update", CmdRisk: "update", CmdDelete: "delete"}
	types := make([]string, 0, len(kinds))
	for t := range kinds {
		types = append(types, t)
	}
	counts, err := s.store.CommandCounts(ctx, profileID, types, from, to)
	if err != nil {
		return nil, err
	}
	st := &Stats{ByDay: []DayCount{}}
	var total DayCount
	days := map[string]*DayCount{}
	for _, c := range counts {
		day := c.Day.Format("2006-01-02")
		d := days[day]
		if d == nil {
			d = &DayCount{Date: day}
			days[day] = d
		}
		add(d, kinds[c.Type], c.N)
		add(&total, kinds[c.Type], c.N)
	}
	st.Exchange, st.Request, st.Update, st.Delete = total.Exchange, total.Request, total.Update, total.Delete
	for _, d := range days {
		st.ByDay = append(st.ByDay, *d)
	}
	sort.Slice(st.ByDay, func(i, j int) bool { return st.ByDay[i].Date < st.ByDay[j].Date })
	return st, nil
}
