package bus

// Presence: which bus users are connected (Online), and closing a device's
// connections (Disconnect).

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/privicore/privicore/internal/protocol"
)

// onlineTTL bounds how stale the cached connection list may be.
const onlineTTL = 250 * time.Millisecond

// Disconnect closes every connection of the bus user clientID (a removed
// device, or one whose secret was replaced). With an external NATS it can
// only with a system account connection (Config.SystemURL), in the
// background.
func (b *Bus) Disconnect(clientID string) {
	if clientID == "" {
		return
	}
	b.setOnline(clientID, false)
	if b.srv == nil {
		if b.sys != nil {
			at := time.Now()
			b.kicks.Add(1)
			go func() {
				defer b.kicks.Done()
				b.kick(clientID, at)
			}()
		}
		return
	}
	conns, err := b.srv.Connz(&server.ConnzOptions{User: clientID, Limit: 1024})
	if err != nil {
		return
	}
	for _, c := range conns.Conns {
		b.srv.DisconnectClientByID(c.Cid)
	}
}

// Online reports whether the bus user clientID has a connection (as of at
// most onlineTTL ago; a connection that authenticates since, or one closed
// by Disconnect, is seen at once).
//
// With an external NATS the engine cannot list connections: it probes the
// device instead (a request on <root>.to.ping: "no responders" means
// offline; any answer, or none within a second from a device that is
// subscribed but busy, online), keeping an online answer for onlineTTL.
func (b *Bus) Online(clientID string) bool {
	if clientID == "" {
		return false
	}
	if b.srv == nil {
		return b.probe(clientID)
	}
	b.onlineMu.Lock()
	defer b.onlineMu.Unlock()
	if time.Since(b.onlineAt) > onlineTTL {
		b.online = map[string]bool{}
		if conns, err := b.srv.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20}); err == nil {
			for _, c := range conns.Conns {
				b.online[c.AuthorizedUser] = true
			}
		}
		b.onlineAt = time.Now()
	}
	return b.online[clientID]
}

// probe answers Online on an external NATS.
func (b *Bus) probe(clientID string) bool {
	b.onlineMu.Lock()
	if b.online == nil || b.probed == nil {
		b.online, b.probed = map[string]bool{}, map[string]time.Time{}
	}
	if at, ok := b.probed[clientID]; ok && time.Since(at) < onlineTTL {
		on := b.online[clientID]
		b.onlineMu.Unlock()
		return on
	}
	b.onlineMu.Unlock()
	id := protocol.ClientDevice(clientID)
	_, err := b.nc.Request(protocol.To(protocol.DeviceSubject(b.cfg.Prefix, id), protocol.OpPing), nil, time.Second)
	// Only "no responders" says the device is away: one that is subscribed
	// but slow to answer (a busy machine) is online, and what is sent to it
	// has its own, longer deadline.
	on := !errors.Is(err, nats.ErrNoResponders)
	b.onlineMu.Lock()
	defer b.onlineMu.Unlock()
	if !on {
		// Not kept: a device that connects a moment later is seen at its
		// next probe (an answer of no responders costs one round trip to
		// the server), not an onlineTTL later.
		delete(b.probed, clientID)
		return false
	}
	if len(b.probed) > 100000 {
		b.online, b.probed = map[string]bool{}, map[string]time.Time{}
	}
	b.online[clientID], b.probed[clientID] = true, time.Now()
	return true
}

// setOnline updates the cache for one user.
func (b *Bus) setOnline(clientID string, on bool) {
	b.onlineMu.Lock()
	defer b.onlineMu.Unlock()
	if b.online == nil {
		b.online = map[string]bool{}
	}
	if on {
		b.online[clientID] = true
	} else {
		delete(b.online, clientID)
	}
}
