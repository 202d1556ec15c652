package engine

import (
	"github.com/privicore/privicore/internal/bus"
	"github.com/privicore/privicore/internal/wsproxy"
)

// newEvents starts the relay of the sockets' events between the replicas
// (shared mode): its buffer keeps events for ChannelBufferTTL, as the
// single engine's hub does.
func (e *Engine) newEvents() (*bus.Events, error) {
	ttl := e.cfg.ChannelBufferTTL
	if ttl <= 0 {
		ttl = wsproxy.DefaultBufferTTL
	}
	return bus.NewEvents(e.Bus, bus.EventsConfig{Source: e.cfg.ReplicaID, BufferTTL: ttl, BufferSize: wsproxy.DefaultBufferSize, Logger: e.log})
}
