package httpapi

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/privicore/privicore"
)

// fieldKind is the JSON type a body field must have.
type fieldKind int

const (
	kindString  fieldKind = iota + 1 // a JSON string
	kindInt                          // a JSON integer, or a string holding one (forms send text)
	kindStrings                      // an array of strings, or one comma-separated string
	kindObject                       // an object, or a string holding one (forms)
)

// problem is the 422 message for a field of the wrong type.
func (k fieldKind) problem() string {
	switch k {
	case kindString:
		return "must be a string"
	case kindInt:
		return "must be an integer"
	case kindStrings:
		return "must be an array of strings"
	default:
		return "must be an object"
	}
}

// fieldKinds is the type of every body field a handler reads, by name: a
// name means the same thing on every route, so one table serves all of
// them. bind checks a body against it before any handler runs, so that a
// number, object or array where a string belongs (or any such mismatch) is
// 422 with errors.<field> instead of being read as absent or as text.
// TestFieldKindsCoverHandlers keeps it in step with the handlers.
var fieldKinds = map[string]fieldKind{
	// strings
	"applicationId": kindString, "authorization_code": kindString, "authorizationCode": kindString,
	"client_id": kindString, "clientId": kindString, "code": kindString, "commandId": kindString,
	"configurationId": kindString, "votingConfigurationId": kindString, "context": kindString,
	"currentPassword": kindString, "current_password": kindString, "newPassword": kindString, "new_password": kindString,
	"data": kindString, "dataToken": kindString, "token": kindString, "deviceIdentifier": kindString, "deviceId": kindString,
	"deviceName": kindString, "name": kindString, "displayName": kindString, "extension": kindString, "fileName": kindString,
	"path": kindString, "givenName": kindString, "given_name": kindString, "familyName": kindString, "family_name": kindString,
	"grantType": kindString, "grant_type": kindString, "id": kindString, "nonce": kindString, "password": kindString,
	"username": kindString, "policyId": kindString, "policyTemplateId": kindString, "poolId": kindString,
	"publicKey": kindString, "public_key": kindString, "question": kindString, "title": kindString,
	"redirectUri": kindString, "redirect_uri": kindString, "refresh_token": kindString, "refreshToken": kindString,
	"request_auth_token_command_id": kindString, "requestAuthTokenCommandId": kindString, "role": kindString,
	"temporaryTokenSpace": kindString, "temporaryToken": kindString, "strategy": kindString,
	// integers
	"size": kindInt, "ttl": kindInt, "quorumSize": kindInt, "timeLimit": kindInt, "numberOfAttempts": kindInt,
	"percentageRequired": kindInt, "strategy_params": kindInt, "strategyParams": kindInt,
	// arrays of strings
	"applyingEventIds": kindStrings, "deviceIdentifiers": kindStrings, "scope": kindStrings, "scopes": kindStrings,
	"skipAuthenticatorDevices": kindStrings, "tags": kindStrings,
	// objects
	"configuration": kindObject, "meta": kindObject,
}

// checkKinds reports every known body field whose type is wrong: in JSON
// by its value (null counts as absent), in a form a string or integer field
// sent as an array or object (`role[]=…`, `role[a]=…`).
func (p *params) checkKinds() error {
	v := privicore.ValidationErrors{}
	for name, val := range p.json {
		if k, ok := fieldKinds[name]; ok && val != nil && !jsonKindOK(k, val) {
			v.Add(name, k.problem())
		}
	}
	if p.form != nil {
		formKinds(p.form, v)
	}
	return v.Err()
}

// jsonKindOK reports whether a decoded JSON value fits k.
func jsonKindOK(k fieldKind, val any) bool {
	switch k {
	case kindString:
		_, ok := val.(string)
		return ok
	case kindInt:
		switch val.(type) {
		case json.Number, string:
			return true // Int parses it and says so when it is no integer
		}
		return false
	case kindStrings:
		switch val := val.(type) {
		case string:
			return true
		case []any:
			for _, e := range val {
				if _, ok := e.(string); !ok {
					return false
				}
			}
			return true
		}
		return false
	default:
		switch val.(type) {
		case map[string]any, string:
			return true
		}
		return false
	}
}

// formKinds adds a problem for each string or integer field of form sent
// with brackets, as an array or an object would be.
func formKinds(form url.Values, v privicore.ValidationErrors) {
	for key := range form {
		name, _, bracket := strings.Cut(key, "[")
		if !bracket {
			continue
		}
		if k := fieldKinds[name]; (k == kindString || k == kindInt) && len(v[name]) == 0 {
			v.Add(name, k.problem())
		}
	}
}
