package datatoken

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/privicore/privicore"
)

// FileMeta is a configure-file-meta request.
type FileMeta struct {
	Token, FileName, Extension, Context, Path string
	Size                                      *int64
}

// ConfigureFileMeta sets the file meta of an exchanged token and makes it
// permanent, returning the dtk-… token. ENOTFOUND for an unknown token,
// ECONFLICT while the exchange has not finished.
func (s *Service) ConfigureFileMeta(ctx context.Context, profileID string, m FileMeta) (string, error) {
	v := privicore.ValidationErrors{}
	if m.Token == "" {
		v.Add("token", "is required")
	}
	if m.Size != nil && *m.Size < 0 {
		v.Add("size", "must be an integer ≥ 0")
	}
	if m.Context != "" && utf8.RuneCountInString(m.Context) > 512 {
		v.Add("context", "must be 1 to 512 characters")
	}
	for f, val := range map[string]string{"fileName": m.FileName, "extension": m.Extension, "path": m.Path} {
		if utf8.RuneCountInString(val) > 1024 {
			v.Add(f, "must be at most 1024 characters")
		}
	}
	if err := v.Err(); err != nil {
		return "", err
	}
	// Read outside the writer; the update then applies only if nobody
	// changed the token meanwhile (its updated_at is the version), else it
	// is redone inside the transaction.
	t, err := s.owned(ctx, s.store, profileID, m.Token)
	if err != nil {
		return "", err
	}
	token, err := s.applyFileMeta(t, m)
	if err != nil {
		return "", err
	}
	version := t.UpdatedAt
	t.UpdatedAt = s.now()
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		return q.UpdateDataTokenIf(ctx, t, version, fileMetaFields...)
	})
	if privicore.ErrorCode(err) != privicore.ECONFLICT {
		return token, err
	}
	err = s.store.Write(ctx, func(q privicore.Queries) error {
		t, err := s.owned(ctx, q, profileID, m.Token)
		if err != nil {
			return err
		}
		if token, err = s.applyFileMeta(t, m); err != nil {
			return err
		}
		t.UpdatedAt = s.now()
		return q.UpdateDataToken(ctx, t, fileMetaFields...)
	})
	return token, err
}

// fileMetaFields are what configure-file-meta writes.
var fileMetaFields = []privicore.DataTokenField{privicore.FieldToken, privicore.FieldExpiresAt, privicore.FieldMeta, privicore.FieldContext, privicore.FieldUpdatedAt}

// applyFileMeta sets m on t (making it permanent) and returns its dtk-… token.
func (s *Service) applyFileMeta(t *privicore.DataToken, m FileMeta) (string, error) {
	if t.State != privicore.TokenStored {
		return "", privicore.Errorf(privicore.ECONFLICT, "the exchange has not finished")
	}
	if t.Token == "" {
		if !s.now().Before(t.ExpiresAt) {
			return "", privicore.Errorf(privicore.ENOTFOUND, "data token not found")
		}
		t.Token, t.ExpiresAt = randomToken("dtk-"), time.Time{}
	}
	file, _ := t.Meta["file"].(map[string]any)
	if file == nil {
		file = map[string]any{}
	}
	file["fileName"], file["extension"], file["path"] = m.FileName, m.Extension, m.Path
	if m.Size != nil {
		file["size"] = *m.Size
	} else if _, ok := file["size"]; !ok {
		file["size"] = t.Size
	}
	t.Meta["file"] = file
	if m.Context != "" {
		t.Context = m.Context
	}
	return t.Token, nil
}
