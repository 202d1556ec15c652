package httpapi

import (
	"net/http"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/device"
	"github.com/privicore/privicore/internal/profile"
)

// authedOrQR accepts the owner's token or a device enrollment (QR) token.
// The handler tells them apart by authFrom(r).Token.Kind.
func (s *Server) authedOrQR(scope string, h http.HandlerFunc) http.Handler {
	owner := s.authed(activeProfile, scope, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret := r.Header.Get(authHeader); profile.IsQRToken(secret) {
			s.asQR(w, r, secret, h)
		} else {
			owner.ServeHTTP(w, r)
		}
	})
}

// qrTokenID is the enrollment token's id when the caller used one.
func qrTokenID(a *profile.Auth) string {
	if a.Token.Kind == privicore.TokenQR {
		return a.Token.ID
	}
	return ""
}

// deviceID reads deviceIdentifier (also deviceId).
func deviceID(p *params) string { return p.String("deviceIdentifier", "deviceId") }

func (s *Server) requestUniqueIdentifier(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	a := authFrom(r)
	var enr *device.Enrollment
	if a.Token.Kind == privicore.TokenQR {
		if err := s.Profiles.SpendQR(r.Context(), a.Token); err != nil {
			s.fail(w, r, err)
			return
		}
		enr = &device.Enrollment{TokenID: a.Token.ID, Role: a.Token.Role}
	}
	c, err := s.Devices.RequestIdentifier(r.Context(), a.Profile.ID, p.String("deviceName", "name"), enr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

func (s *Server) retrieveUniqueIdentifier(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	id := r.PathValue("commandId")
	if id == "" {
		id = p.String("id", "commandId")
	}
	if id == "" {
		s.fail(w, r, privicore.Invalid("id", "is required"))
		return
	}
	a := authFrom(r)
	dev, err := s.Devices.RetrieveIdentifier(r.Context(), a.Profile.ID, id, qrTokenID(a))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.DeviceIdentifier{DeviceIdentifier: dev, DeviceID: dev})
}

func (s *Server) profileDevices(w http.ResponseWriter, r *http.Request) {
	list, err := s.Devices.List(r.Context(), authFrom(r).Profile.ID, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) configureDeviceMeta(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bind(w, r)
	if !ok {
		return
	}
	m := device.Meta{DeviceID: deviceID(p)}
	if p.Has("name") {
		v := p.String("name")
		m.Name = &v
	}
	if p.Has("displayName") {
		v := p.String("displayName")
		m.DisplayName = &v
	}
	if p.Has("tags") {
		m.Tags, m.SetTags = p.Strings("tags"), true
		if m.Tags == nil {
			m.Tags = []string{}
		}
	}
	meta, present, err := p.Object("meta")
	if err != nil {
		s.fail(w, r, privicore.Invalid("meta", err.Error()))
		return
	}
	if present {
		m.Meta = meta
	}
	c, err := s.Devices.ConfigureMeta(r.Context(), authFrom(r).Profile.ID, m)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeAccepted(w, c)
}

// deviceCommand handles the endpoints that submit one command about one
// device: approve, reject, remove, and role changes.
func (s *Server) deviceCommand(typ, role string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.accept(w, r, func(p *params) (*privicore.Command, error) {
			return s.Devices.Submit(r.Context(), authFrom(r).Profile.ID, typ, deviceID(p), role)
		})
	}
}

func (s *Server) deviceConfiguration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("deviceIdentifier")
	if id == "" {
		p, ok := s.bind(w, r)
		if !ok {
			return
		}
		id = deviceID(p)
	}
	b, err := s.Devices.Configuration(r.Context(), authFrom(r).Profile.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// checkDeviceID validates a deviceIdentifier's shape.
func checkDeviceID(id string) error { return device.CheckID("deviceIdentifier", id) }
