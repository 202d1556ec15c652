package api

import "time"

// Device is a device record, as the profile's device listing
// (GET /device/retrieve-profile-devices) returns it.
type Device struct {
	DeviceIdentifier string         `json:"deviceIdentifier"`
	Name             string         `json:"name"`
	DisplayName      string         `json:"displayName"`
	Tags             []string       `json:"tags"`
	Meta             map[string]any `json:"meta"`
	Role             string         `json:"role"`  // "none", "storage", "authenticator"
	State            string         `json:"state"` // "pending", "approved"
	HasPublicKey     bool           `json:"hasPublicKey"`
	Online           bool           `json:"online"`     // connected to the bus now
	LastSeenAt       *time.Time     `json:"lastSeenAt"` // now if online; null if never connected
	CreatedAt        time.Time      `json:"createdAt"`
}

// StorageDevice is a storage device record with what it holds, as the
// storage listing (GET /storage/list-storage-devices) returns it.
type StorageDevice struct {
	Device
	BlobCount int   `json:"blobCount"` // blobs the device holds
	Bytes     int64 `json:"bytes"`     // their size in bytes
}

// DeviceIdentifier is the answer of /device/retrieve-unique-identifier:
// the device a request command created, under both names.
type DeviceIdentifier struct {
	DeviceIdentifier string `json:"deviceIdentifier"`
	DeviceID         string `json:"deviceId"`
}

// SyncResult is the outcome body of a storage device synchronization
// (/storage/sync-device): blobs copied to the device from its peers, and
// blobs no peer could supply.
type SyncResult struct {
	Copied int `json:"copied"`
	Failed int `json:"failed"`
}
