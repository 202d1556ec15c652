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

// PushAgain pushes plain to profileID's devices as blob blobID through one
// in-memory input, twice, as an exchange that took the queued path after
// an inline attempt out of time (or a retried one) does; it returns the
// wrapped keys of the two pushes.
func (s *Service) PushAgain(ctx context.Context, profileID, blobID string, plain []byte) (first, second []byte, err error) {
	in := newPayloadIn(plain)
	p1, err := s.push(ctx, profileID, blobID, in)
	if err != nil {
		return nil, nil, err
	}
	p2, err := s.push(ctx, profileID, blobID, in)
	if err != nil {
		return nil, nil, err
	}
	return p1.Wrapped, p2.Wrapped, nil
}
