package bus_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/commandtest"
	"github.com/privicore/privicore/internal/protocol"
)

// TestEachAnswerReachesOneReplica: with two engines on one bus, a device's
// answer is handled once, by one of them, and the device gets that one's
// receipt (both handling it, the second would record it again, fail, and
// reply "answered").
func TestEachAnswerReachesOneReplica(t *testing.T) {
	srv := natsServer(t, false)
	var handled atomic.Int32
	var engines []*bus.Bus
	for range 2 {
		b, err := bus.Start(bus.Config{NATSURL: srv.ClientURL()}, approved)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		stop, err := b.ServeAnswers(func(deviceID string, a *protocol.Answer, reply func(protocol.Receipt)) {
			handled.Add(1)
			reply(protocol.Receipt{})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		b.Conn().Flush()
		engines = append(engines, b)
	}
	device, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	answer, _ := json.Marshal(protocol.Answer{PoolID: "p", Vote: "yes", Attempt: 1})
	for i := range 10 {
		if _, err := device.Request(protocol.From(protocol.DeviceSubject(protocol.DefaultPrefix, "d1"), protocol.OpVote), answer, guard); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	// Drained, each engine has handled every answer the server gave it.
	for _, b := range engines {
		if err := b.Conn().Drain(); err != nil {
			t.Fatal(err)
		}
	}
	commandtest.Eventually(t, "the engines' connections drained", func() bool {
		return engines[0].Conn().IsClosed() && engines[1].Conn().IsClosed()
	})
	if n := handled.Load(); n != 10 {
		t.Fatalf("10 answers handled %d times, want once each", n)
	}
}
