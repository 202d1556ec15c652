package bus

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/privicore/privicore/internal/protocol"
)

// With an external NATS, device connections are authenticated by the
// engine through the server's auth callout: the server asks the engine
// (on $SYS.REQ.USER.AUTH) about every connection that is not one of its
// own users; the engine checks the device's bus credentials against its
// database and answers with a user JWT, signed with the callout issuer
// key, that confines the device to its own subjects. The server must be
// configured with that issuer's public key and with the engine's user
// among the callout's auth users:
//
//	authorization {
//	  users: [ { user: privicore, password: … } ]
//	  auth_callout { issuer: A…, auth_users: [ privicore ] }
//	}
//
// A device's grant lasts CalloutTTL: a removed device's credentials are
// refused at once, and a connection it already has ends within CalloutTTL,
// or at once when the engine also holds a system account connection
// (Config.SystemURL; see kick).

// calloutSubject is where the server asks.
const calloutSubject = "$SYS.REQ.USER.AUTH"

// DefaultCalloutTTL is how long a device's grant lasts before it
// reconnects and is asked about again.
const DefaultCalloutTTL = 5 * time.Minute

// startCallout answers the server's authorization requests.
func (b *Bus) startCallout() error {
	kp, err := nkeys.FromSeed([]byte(b.cfg.CalloutSeed))
	if err != nil {
		return fmt.Errorf("bus: the auth callout key: %w", err)
	}
	if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicAccountKey(pub) {
		return fmt.Errorf("bus: the auth callout key must be an account key (seed SA…)")
	}
	ttl := b.cfg.CalloutTTL
	if ttl <= 0 {
		ttl = DefaultCalloutTTL
	}
	account := b.cfg.CalloutAccount
	if account == "" {
		account = "$G"
	}
	_, err = b.nc.QueueSubscribe(calloutSubject, "privicore-auth", func(m *nats.Msg) {
		token, err := b.authorize(string(m.Data), kp, account, ttl)
		if err != nil {
			b.log.Warn("auth callout request not understood", "err", err)
			return
		}
		m.Respond([]byte(token))
	})
	return err
}

// authorize answers one request: a user JWT for a device with valid
// credentials, an error otherwise (the server then refuses the connection).
func (b *Bus) authorize(request string, kp nkeys.KeyPair, account string, ttl time.Duration) (string, error) {
	rc, err := jwt.DecodeAuthorizationRequestClaims(request)
	if err != nil {
		return "", err
	}
	res := jwt.NewAuthorizationResponseClaims(rc.UserNkey)
	res.Audience = rc.Server.ID
	o := rc.ConnectOptions
	id, ok := b.auth.AuthenticateDevice(o.Username, o.Password)
	if !ok {
		b.log.Info("bus connection refused", "client", o.Username)
		res.Error = "not authorized"
		return res.Encode(kp)
	}
	uc := jwt.NewUserClaims(rc.UserNkey)
	uc.Name = o.Username
	uc.Audience = account
	uc.Expires = time.Now().Add(ttl).Unix()
	root := protocol.DeviceSubject(b.cfg.Prefix, id)
	uc.Pub.Allow.Add(protocol.FromAll(root))
	uc.Sub.Allow.Add(protocol.ToAll(root), protocol.InboxPrefix(id)+".>")
	uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
	if res.Jwt, err = uc.Encode(kp); err != nil {
		return "", err
	}
	b.setOnline(o.Username, true)
	return res.Encode(kp)
}

// kickWait is how long kick collects the servers' answers.
const kickWait = time.Second

// kick closes every connection of the bus user clientID made before
// before on an external NATS, through its system account: it asks all
// servers for the user's connections ($SYS.REQ.SERVER.PING.CONNZ, filtered
// by user) and has each server close its own ($SYS.REQ.SERVER.<id>.KICK).
func (b *Bus) kick(clientID string, before time.Time) {
	inbox := nats.NewInbox()
	sub, err := b.sys.SubscribeSync(inbox)
	if err != nil {
		b.log.Warn("bus: cannot close a removed device's connections", "client", clientID, "err", err)
		return
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(server.ConnzEventOptions{ConnzOptions: server.ConnzOptions{User: clientID, Limit: 1024}})
	if err := b.sys.PublishRequest("$SYS.REQ.SERVER.PING.CONNZ", inbox, req); err != nil {
		b.log.Warn("bus: cannot close a removed device's connections", "client", clientID, "err", err)
		return
	}
	deadline := time.Now().Add(kickWait)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return // every server that answered in time was handled
		}
		var r struct {
			Server struct {
				ID string `json:"id"`
			} `json:"server"`
			Data *server.Connz `json:"data"`
		}
		if json.Unmarshal(m.Data, &r) != nil || r.Data == nil || r.Server.ID == "" {
			continue
		}
		for _, c := range r.Data.Conns {
			if c.Start.After(before) {
				// Made after the Disconnect (the kick runs in the
				// background): with the device's new secret, since the
				// callout checks it at every connect. Kicking it would
				// drop a device that just started with its new bundle.
				continue
			}
			body, _ := json.Marshal(server.KickClientReq{CID: c.Cid})
			if _, err := b.sys.Request("$SYS.REQ.SERVER."+r.Server.ID+".KICK", body, time.Second); err != nil {
				b.log.Warn("bus: closing a removed device's connection failed", "client", clientID, "server", r.Server.ID, "err", err)
			}
		}
	}
}
