package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/coherence"
)

const deviceCols = `id, profile_id, request_command_id, name, display_name, tags, meta, role, state, public_key, client_id, secret_hash, qr_token_id, qr_role, last_seen_at, created_at, updated_at`

func scanDevice(row interface{ Scan(...any) error }) (*privicore.Device, error) {
	var d privicore.Device
	var tags, meta string
	var seen, created, updated int64
	err := row.Scan(&d.ID, &d.ProfileID, &d.RequestCommandID, &d.Name, &d.DisplayName, &tags, &meta, &d.Role, &d.State,
		&d.PublicKey, &d.ClientID, &d.SecretHash, &d.QRTokenID, &d.QRRole, &seen, &created, &updated)
	if isNoRows(err) {
		return nil, notFound("device")
	} else if err != nil {
		return nil, dbErr(err)
	}
	json.Unmarshal([]byte(tags), &d.Tags)
	json.Unmarshal([]byte(meta), &d.Meta)
	if d.Tags == nil {
		d.Tags = []string{}
	}
	if d.Meta == nil {
		d.Meta = map[string]any{}
	}
	d.LastSeenAt, d.CreatedAt, d.UpdatedAt = fromNanos(seen), fromNanos(created), fromNanos(updated)
	return &d, nil
}

func deviceArgs(d *privicore.Device) []any {
	tags, _ := json.Marshal(orEmpty(d.Tags))
	meta, _ := json.Marshal(d.Meta)
	if d.Meta == nil {
		meta = []byte("{}")
	}
	return []any{d.ID, d.ProfileID, d.RequestCommandID, d.Name, d.DisplayName, string(tags), string(meta), d.Role, d.State,
		d.PublicKey, d.ClientID, d.SecretHash, d.QRTokenID, d.QRRole, nanos(d.LastSeenAt), nanos(d.CreatedAt), nanos(d.UpdatedAt)}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateDevice implements privicore.DeviceStore.
func (q queries) CreateDevice(ctx context.Context, d *privicore.Device) error {
	_, err := q.exec(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, deviceArgs(d)...)
	q.note(coherence.Devices, d.ProfileID)
	return dbErr(err)
}

// UpdateDevice implements privicore.DeviceStore.
func (q queries) UpdateDevice(ctx context.Context, d *privicore.Device) error {
	args := deviceArgs(d)
	n, err := affected(q.exec(ctx, `UPDATE devices SET profile_id = ?, request_command_id = ?, name = ?, display_name = ?, tags = ?, meta = ?, role = ?, state = ?,
		public_key = ?, client_id = ?, secret_hash = ?, qr_token_id = ?, qr_role = ?, last_seen_at = ?, created_at = ?, updated_at = ? WHERE id = ?`,
		append(args[1:], args[0])...))
	if err == nil && n == 0 {
		return notFound("device")
	}
	q.note(coherence.Devices, d.ProfileID)
	return err
}

// DeleteDevice implements privicore.DeviceStore.
func (q queries) DeleteDevice(ctx context.Context, id string) error {
	_, err := q.exec(ctx, `DELETE FROM devices WHERE id = ?`, id)
	q.note(coherence.Devices, "")
	return dbErr(err)
}

// FindDevice implements privicore.DeviceStore.
func (q queries) FindDevice(ctx context.Context, profileID, id string) (*privicore.Device, error) {
	return scanDevice(q.row(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ? AND profile_id = ?`, id, profileID))
}

// FindDeviceByClientID implements privicore.DeviceStore.
func (q queries) FindDeviceByClientID(ctx context.Context, clientID string) (*privicore.Device, error) {
	if clientID == "" {
		return nil, notFound("device")
	}
	return scanDevice(q.row(ctx, `SELECT `+deviceCols+` FROM devices WHERE client_id = ?`, clientID))
}

// FindDeviceByRequest implements privicore.DeviceStore.
func (q queries) FindDeviceByRequest(ctx context.Context, profileID, commandID string) (*privicore.Device, error) {
	return scanDevice(q.row(ctx, `SELECT `+deviceCols+` FROM devices WHERE request_command_id = ? AND profile_id = ?`, commandID, profileID))
}

// ListDevices implements privicore.DeviceStore.
func (q queries) ListDevices(ctx context.Context, profileID, role string) ([]*privicore.Device, error) {
	query := `SELECT ` + deviceCols + ` FROM devices WHERE profile_id = ?`
	args := []any{profileID}
	if role != "" {
		query += ` AND role = ?`
		args = append(args, role)
	}
	return collect(ctx, q, scanDevice, query+` ORDER BY created_at, id`, args...)
}

// TouchDevice implements privicore.DeviceStore.
func (q queries) TouchDevice(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE devices SET last_seen_at = ? WHERE id = ?`, nanos(at), id)
	return dbErr(err)
}
