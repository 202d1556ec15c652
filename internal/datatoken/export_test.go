package datatoken

import (
	"context"

	"github.com/privicore/privicore"
)

// ReadPayload reads the layer-1 payload of t from the devices, as a
// request or a download does (for the rule tests).
func (s *Service) ReadPayload(ctx context.Context, t *privicore.DataToken) ([]byte, error) {
	tr, err := s.transfer(ctx, t)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = tr.WriteTo(writerFunc(func(b []byte) (int, error) { out = append(out, b...); return len(b), nil }))
	return out, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
