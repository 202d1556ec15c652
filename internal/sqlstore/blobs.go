package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/privicore/privicore"
)

// Where blobs are: which devices hold each blob, and the per-device outbox
// of queued store and delete operations.

// AddDeviceBlob implements privicore.DataTokenStore.
func (q queries) AddDeviceBlob(ctx context.Context, blobID string, size int64, deviceIDs ...string) error {
	if len(deviceIDs) == 0 {
		return nil
	}
	rows := make([]string, len(deviceIDs))
	args := make([]any, 0, 3*len(deviceIDs))
	for i, id := range deviceIDs {
		rows[i] = "(?, ?, ?)"
		args = append(args, id, blobID, size)
	}
	_, err := q.exec(ctx, `INSERT INTO device_blobs (device_id, blob_id, size) VALUES `+strings.Join(rows, ", ")+`
		ON CONFLICT (device_id, blob_id) DO UPDATE SET size = excluded.size`, args...)
	return dbErr(err)
}

// RemoveDeviceBlob implements privicore.DataTokenStore.
func (q queries) RemoveDeviceBlob(ctx context.Context, deviceID, blobID string) error {
	_, err := q.exec(ctx, `DELETE FROM device_blobs WHERE device_id = ? AND blob_id = ?`, deviceID, blobID)
	return dbErr(err)
}

// BlobHolders implements privicore.DataTokenStore.
func (q queries) BlobHolders(ctx context.Context, blobID string) ([]string, error) {
	return q.strings(ctx, `SELECT device_id FROM device_blobs WHERE blob_id = ? ORDER BY device_id`, blobID)
}

// DeviceBlobStats implements privicore.DataTokenStore.
func (q queries) DeviceBlobStats(ctx context.Context, deviceID string) (int, int64, error) {
	var n int
	var bytes int64
	err := q.row(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM device_blobs WHERE device_id = ?`, deviceID).Scan(&n, &bytes)
	return n, bytes, dbErr(err)
}

// AddOutbox implements privicore.DataTokenStore.
func (q queries) AddOutbox(ctx context.Context, deviceID, blobID, op string, at time.Time) error {
	_, err := q.exec(ctx, `INSERT INTO device_outbox (device_id, blob_id, op, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (device_id, blob_id, op) DO UPDATE SET created_at = excluded.created_at`, deviceID, blobID, op, nanos(at))
	return dbErr(err)
}

// RemoveOutbox implements privicore.DataTokenStore.
func (q queries) RemoveOutbox(ctx context.Context, deviceID, blobID, op string) error {
	_, err := q.exec(ctx, `DELETE FROM device_outbox WHERE device_id = ? AND blob_id = ? AND op = ?`, deviceID, blobID, op)
	return dbErr(err)
}

// Outbox implements privicore.DataTokenStore.
func (q queries) Outbox(ctx context.Context, deviceID string, limit int) ([]privicore.OutboxEntry, error) {
	rows, err := q.rows(ctx, `SELECT device_id, blob_id, op, created_at FROM device_outbox WHERE device_id = ? ORDER BY created_at LIMIT ?`, deviceID, limit)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	var out []privicore.OutboxEntry
	for rows.Next() {
		var e privicore.OutboxEntry
		var at int64
		if err := rows.Scan(&e.DeviceID, &e.BlobID, &e.Op, &at); err != nil {
			return nil, dbErr(err)
		}
		e.CreatedAt = fromNanos(at)
		out = append(out, e)
	}
	return out, dbErr(rows.Err())
}

// OutboxDevices implements privicore.DataTokenStore.
func (q queries) OutboxDevices(ctx context.Context) ([]string, error) {
	return q.strings(ctx, `SELECT DISTINCT device_id FROM device_outbox`)
}
