// Package protocol is the wire between the engine and its devices on the
// bus: the subjects, the bus user names, the storage operations and their
// headers, and the ballot and answer formats of authenticators
// (ballot.go). The engine's packages and the device daemons both speak it,
// so a subject or a header is spelled in one place.
//
// Every device has a root subject, <prefix>.dev.<device id>. The engine
// sends to <root>.to.<op>; the device sends to <root>.from.<kind>, and may
// subscribe to nothing but <root>.to.> and its own reply inbox
// (InboxPrefix). The bus enforces both.
package protocol

import "strings"

// DefaultPrefix starts every privicore subject.
const DefaultPrefix = "privicore"

// Operations every device answers or sends.
const (
	// OpPing is the presence probe: a device answers it with an empty
	// reply (engine → device).
	OpPing = "ping"
	// OpHello is what a device publishes on every (re)connect, so the
	// engine delivers what it missed (device → engine).
	OpHello = "hello"
)

// DeviceSubject is the root of a device's subjects.
func DeviceSubject(prefix, deviceID string) string { return prefix + ".dev." + deviceID }

// To is the subject the engine sends op on to the device whose root
// subject is root (DeviceSubject; a device's bundle carries its root as
// BusSubjectPrefix).
func To(root, op string) string { return root + ".to." + op }

// From is the subject the device whose root subject is root sends kind on.
func From(root, kind string) string { return root + ".from." + kind }

// FromAny is the wildcard subject of kind sent by any device.
func FromAny(prefix, kind string) string { return prefix + ".dev.*.from." + kind }

// ToAll is the wildcard of everything the engine sends a device (what the
// device subscribes to).
func ToAll(root string) string { return root + ".to.>" }

// FromAll is the wildcard of everything a device may send.
func FromAll(root string) string { return root + ".from.>" }

// SubjectDevice returns the device id in a <prefix>.dev.<id>.… subject.
func SubjectDevice(prefix, subject string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(subject, prefix+".dev."), ".")
	return id
}

// clientPrefix starts every device's bus user name.
const clientPrefix = "device-"

// ClientID is a device's bus user name.
func ClientID(deviceID string) string { return clientPrefix + deviceID }

// ClientDevice returns the device id of a device's bus user name.
func ClientDevice(clientID string) string { return strings.TrimPrefix(clientID, clientPrefix) }

// IsDeviceClient reports whether a bus user name is a device's.
func IsDeviceClient(clientID string) bool { return strings.HasPrefix(clientID, clientPrefix) }

// InboxPrefix is the reply inbox prefix a device must use (nats.CustomInboxPrefix).
func InboxPrefix(deviceID string) string { return "_INBOX_" + deviceID }
