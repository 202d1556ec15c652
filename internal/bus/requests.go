package bus

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore/internal/protocol"
)

// Request sends op to the device deviceID (on protocol.To of its root
// subject) with header and body, and waits for its reply until ctx ends.
// A reply carrying protocol.HeaderError is a *protocol.DeviceError.
func (b *Bus) Request(ctx context.Context, deviceID, op string, header map[string]string, body []byte) ([]byte, error) {
	m := nats.NewMsg(protocol.To(protocol.DeviceSubject(b.cfg.Prefix, deviceID), op))
	for k, v := range header {
		m.Header.Set(k, v)
	}
	m.Data = body
	r, err := b.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, err
	}
	if e := r.Header.Get(protocol.HeaderError); e != "" {
		return nil, &protocol.DeviceError{Code: e}
	}
	return r.Data, nil
}

// OnHello calls hello with the device id of every hello a device sends
// (protocol.OpHello, on each of its (re)connects), one at a time, until
// the returned stop is called. Fanout delivers a device's outbox on it;
// the voting pools resend its open ballots.
func (b *Bus) OnHello(hello func(deviceID string)) (stop func(), err error) {
	return b.serve(protocol.OpHello, "", func(_ *nats.Msg, deviceID string) { hello(deviceID) }) // every replica hears it (the outbox lease holder delivers on it)
}
