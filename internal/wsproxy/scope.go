package wsproxy

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

// Grant is what a token presented in joinChannel allows: whose events, and
// for an OAuth access token, which of them.
type Grant struct {
	ProfileID string // the profile whose events the socket receives
	TokenID   string // a stable id of the token (CloseToken closes its sockets)
	ExpiresAt time.Time
	// OAuth marks an application's access token: the socket receives only
	// the events its Scopes allow reading (EventScopes) and the acks of the
	// commands Application submitted. A profile's own token receives every
	// event of the profile.
	OAuth       bool
	Application string   // the OAuth application's id
	Scopes      []string // the access token's granted scopes
}

// Event types the channel carries (spec §1) other than command acks
// (command.EventCommand).
const (
	EventDataRequest  = "X-DPT-CAB-REQUEST-ID" // a data request answered: carries the ciphertext or its download URL
	EventStreamReady  = "STREAM-READY"         // the download URL of a large answer
	EventPoolOpened   = "POOL-OPENED"          // a voting pool opened
	EventPoolResolved = "POOL-RESOLVED"        // a voting pool resolved
)

// EventScopes is the scope an OAuth access token needs to receive an event,
// by the event's type (data.type). Events are classified by name here so
// that the packages producing them need not know about sockets.
//
// Command acks (X-DPT-CAB-ID) are not in the table: an access token's
// socket receives the acks of its own application's commands (whatever the
// command; an application needs its acks) and no other ack, because an ack
// body may carry what the command created (a reservation's temporary
// token, a device id, a policy id) and watching other actors' commands is
// not part of any scope. An event type in neither the table nor
// command.EventCommand reaches the profile's own tokens only.
var EventScopes = map[string]string{
	EventDataRequest:  privicore.ScopeDataTokenRead,
	EventStreamReady:  privicore.ScopeDataTokenRead,
	EventPoolOpened:   privicore.ScopeVotingRead,
	EventPoolResolved: privicore.ScopeVotingRead,
}

// eventInfo is what the hub knows of an event to route it.
type eventInfo struct {
	typ   string // data.type
	actor string // command acks: who submitted the command
}

// actorApplication is the command actor of an OAuth application
// (profile.Auth.Actor).
func actorApplication(app string) string { return "application " + app }

// allows reports whether a socket joined with g may receive ev.
func (g *Grant) allows(ev eventInfo) bool {
	if !g.OAuth {
		return true
	}
	if ev.typ == command.EventCommand {
		return g.Application != "" && ev.actor == actorApplication(g.Application)
	}
	scope, ok := EventScopes[ev.typ]
	return ok && privicore.ScopeCovers(g.Scopes, scope)
}

// encode marshals an event's data into the channel message {"data": data}
// and classifies it.
func encode(data any) (eventInfo, []byte, error) {
	msg, err := json.Marshal(struct {
		Data any `json:"data"`
	}{data})
	if err != nil {
		return eventInfo{}, nil, err
	}
	return classify(data), msg, nil
}

// classify reads an event's type without encoding it again: the field of a
// struct that encodes as "type", the "type" key of a map.
func classify(data any) eventInfo {
	switch d := data.(type) {
	case command.Event:
		return eventInfo{typ: d.Type, actor: d.Actor}
	case *command.Event:
		return eventInfo{typ: d.Type, actor: d.Actor}
	case map[string]string:
		return eventInfo{typ: d["type"]}
	case map[string]any:
		typ, _ := d["type"].(string)
		return eventInfo{typ: typ}
	}
	v := reflect.ValueOf(data)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && f.Type.Kind() == reflect.String && (name == "type" || name == "" && f.Name == "Type") {
				return eventInfo{typ: v.Field(i).String()}
			}
		}
	}
	return eventInfo{} // no type: the profile's own tokens only
}
