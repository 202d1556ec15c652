package bus

// Closing a revoked token's sockets on every replica.

import "github.com/nats-io/nats.go"

// closeSubject is the subject of CloseToken's messages.
func (e *Events) closeSubject() string { return e.prefix + ".sockets.close" }

// CloseToken tells every other replica to close the sockets joined with
// tokenID (revoked); it returns when the server has the message.
func (e *Events) CloseToken(tokenID string) error {
	m := nats.NewMsg(e.closeSubject())
	m.Header.Set(HeaderSource, e.source)
	m.Data = []byte(tokenID)
	if err := e.nc.PublishMsg(m); err != nil {
		return err
	}
	return e.nc.Flush()
}

// OnCloseToken calls closeToken with the token id of every other
// replica's CloseToken until stop is called.
func (e *Events) OnCloseToken(closeToken func(tokenID string)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(e.closeSubject(), func(m *nats.Msg) {
		if m.Header.Get(HeaderSource) != e.source {
			closeToken(string(m.Data))
		}
	})
	if err != nil {
		return nil, err
	}
	if err := e.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
