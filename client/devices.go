package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
)

// Device is a device record; BlobCount and Bytes are set in storage
// listings (StorageDevices) only.
type Device = api.StorageDevice

// Bundle is a device's configuration bundle.
type Bundle = privicore.Bundle

func deviceBody(id string) map[string]string { return map[string]string{"deviceIdentifier": id} }

// RequestDeviceIdentifier submits a new pending device; the outcome's body
// is its identifier. The client's token may be the owner's or a QR token.
func (c *Client) RequestDeviceIdentifier(ctx context.Context, name string) (string, error) {
	return c.command(ctx, "/device/request-unique-identifier", nil, map[string]string{"deviceName": name})
}

// RetrieveDeviceIdentifier returns the identifier created by a request
// command (a *Error with Status 404 until it is settled).
func (c *Client) RetrieveDeviceIdentifier(ctx context.Context, commandID string) (string, error) {
	var out api.DeviceIdentifier
	_, _, err := c.do(ctx, http.MethodPost, "/device/retrieve-unique-identifier", nil, map[string]string{"id": commandID}, &out)
	return out.DeviceIdentifier, err
}

// RegisterDeviceKey submits the signed public key of one of the caller's devices.
func (c *Client) RegisterDeviceKey(ctx context.Context, deviceID, signedKey string) (string, error) {
	return c.command(ctx, "/public-key/register-public-key", nil, map[string]string{"publicKey": signedKey, "deviceIdentifier": deviceID})
}

// ApproveDevice submits an approval.
func (c *Client) ApproveDevice(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/device/approve-device", nil, deviceBody(id))
}

// RejectDevice submits the rejection of a pending device.
func (c *Client) RejectDevice(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/device/reject-device", nil, deviceBody(id))
}

// RemoveDevice submits a removal.
func (c *Client) RemoveDevice(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/device/remove", nil, deviceBody(id))
}

// ConfigureDevice submits meta changes (nil fields stay).
func (c *Client) ConfigureDevice(ctx context.Context, id string, name, displayName *string, tags []string, meta map[string]any) (string, error) {
	body := map[string]any{"deviceIdentifier": id}
	if name != nil {
		body["name"] = *name
	}
	if displayName != nil {
		body["displayName"] = *displayName
	}
	if tags != nil {
		body["tags"] = tags
	}
	if meta != nil {
		body["meta"] = meta
	}
	return c.command(ctx, "/device/configure-meta", nil, body)
}

// Devices lists the profile's devices.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	_, _, err := c.do(ctx, http.MethodGet, "/device/retrieve-profile-devices", nil, nil, &out)
	return out, err
}

// DeviceConfiguration issues a new bundle (and secret) for an approved device.
func (c *Client) DeviceConfiguration(ctx context.Context, id string) (*Bundle, error) {
	var b Bundle
	_, _, err := c.do(ctx, http.MethodGet, "/device/retrieve-device-configuration/"+url.PathEscape(id), nil, nil, &b)
	return &b, err
}

// RegisterStorage gives an approved device the storage role.
func (c *Client) RegisterStorage(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/storage/register", nil, deviceBody(id))
}

// RemoveStorage drops the storage role.
func (c *Client) RemoveStorage(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/storage/remove", nil, deviceBody(id))
}

// SyncStorage copies to a storage device what it lacks; the outcome's body
// is {"copied":n,"failed":n}.
func (c *Client) SyncStorage(ctx context.Context, id string) (string, error) {
	return c.command(ctx, "/storage/sync-device", nil, deviceBody(id))
}

// StorageDevices lists the storage devices with their blob counts.
func (c *Client) StorageDevices(ctx context.Context) ([]Device, error) {
	var out []Device
	_, _, err := c.do(ctx, http.MethodGet, "/storage/list-storage-devices", nil, nil, &out)
	return out, err
}
