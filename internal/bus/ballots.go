package bus

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore/internal/protocol"
)

// The authenticators' side of the bus (internal/protocol's ballots and
// answers), as the voting pools use it (voting.Wire).

// SendBallot publishes b to the device's ballot subject.
func (b *Bus) SendBallot(deviceID string, ballot protocol.Ballot) error {
	data, err := json.Marshal(ballot)
	if err != nil {
		return err
	}
	return b.nc.Publish(protocol.To(protocol.DeviceSubject(b.cfg.Prefix, deviceID), protocol.OpBallot), data)
}

// answerQueue is the queue group of the engines' answer subscriptions: of
// several replicas on one bus, one takes each answer (the others would
// record it again, fail, and reply "answered" to the device).
const answerQueue = "privicore-engines"

// ServeAnswers calls answer with every answer a device sends (a request on
// its vote subject), one at a time, the device taken from the subject; a
// is nil when the message is no JSON answer. reply sends the receipt.
// With several replicas on the bus, each answer reaches one of them.
// stop ends the subscription.
func (b *Bus) ServeAnswers(answer func(deviceID string, a *protocol.Answer, reply func(protocol.Receipt))) (stop func(), err error) {
	return b.serve(protocol.OpVote, answerQueue, func(m *nats.Msg, deviceID string) {
		var a protocol.Answer
		ap := &a
		if json.Unmarshal(m.Data, &a) != nil {
			ap = nil
		}
		answer(deviceID, ap, func(r protocol.Receipt) {
			data, _ := json.Marshal(r)
			m.Respond(data)
		})
	})
}

// serve subscribes to what any device sends on op (answers, hellos): in
// queue group queue (one subscriber of the group gets each message), or
// every subscriber each message when queue is "".
func (b *Bus) serve(op, queue string, h func(m *nats.Msg, deviceID string)) (func(), error) {
	sub, err := b.nc.QueueSubscribe(protocol.FromAny(b.cfg.Prefix, op), queue, func(m *nats.Msg) {
		h(m, protocol.SubjectDevice(b.cfg.Prefix, m.Subject))
	})
	if err != nil {
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}
