package fanout

import (
	"context"
	"encoding/json"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/api"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/protocol"
)

// CmdSync is the synchronize-device command.
const CmdSync = "storage.sync"

type syncPayload struct {
	DeviceID string `json:"deviceId"`
}

// SyncPayload builds the CmdSync payload.
func SyncPayload(deviceID string) any { return syncPayload{DeviceID: deviceID} }

// Handle registers the storage commands with the processor.
func (s *Service) Handle(cmds *command.Processor) {
	command.Register(cmds, CmdSync, command.Task[struct{}, string]{
		Prepare: func(ctx context.Context, c *privicore.Command, _ struct{}, _ bool) (string, error) {
			return s.SyncCommand(ctx, c)
		},
		Apply: func(_ context.Context, _ privicore.Queries, _ *privicore.Command, result string) (command.Result, error) {
			return command.Result{Body: result}, nil
		},
	})
}

// SyncCommand is the Prepare step of CmdSync: the device must be one of
// the profile's storage devices and online.
// Its result is the command's body: the sync's outcome, as JSON.
func (s *Service) SyncCommand(ctx context.Context, c *privicore.Command) (string, error) {
	var p syncPayload
	if err := json.Unmarshal(c.Payload, &p); err != nil {
		return "", privicore.Reject("command.bad_payload", "bad payload")
	}
	d, err := s.store.FindDevice(ctx, c.ProfileID, p.DeviceID)
	if privicore.ErrorCode(err) == privicore.ENOTFOUND {
		return "", privicore.Reject("device.not_found", "device not found")
	} else if err != nil {
		return "", err
	}
	if d.Role != privicore.RoleStorage {
		return "", privicore.Reject("device.role_not_held", "not a storage device")
	}
	res, err := s.Sync(ctx, d)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(res)
	return string(b), nil
}

// Sync copies to device d every stored blob of its profile that it lacks,
// from the profile's other storage devices; the blobs it already holds are
// recorded as its.
func (s *Service) Sync(ctx context.Context, d *privicore.Device) (api.SyncResult, error) {
	var res api.SyncResult
	if !s.bus.Online(d.ClientID) {
		return res, privicore.Reject(ReasonDeviceOffline, "the device is offline")
	}
	raw, err := s.request(ctx, d.ID, protocol.OpList, "", nil)
	if err != nil {
		return res, err
	}
	var have []string
	if err := json.Unmarshal(raw, &have); err != nil {
		return res, err
	}
	held := map[string]bool{}
	for _, id := range have {
		held[id] = true
	}
	for page := 1; ; page++ {
		tokens, _, err := s.store.ListDataTokens(ctx, d.ProfileID, privicore.DataTokenFilter{Page: page, PerPage: 500})
		if err != nil {
			return res, err
		}
		for _, t := range tokens {
			if held[t.BlobID] {
				s.store.Write(ctx, func(q privicore.Queries) error { return q.AddDeviceBlob(ctx, t.BlobID, t.Size, d.ID) })
				continue
			}
			if err := s.copyTo(ctx, d, t); err != nil {
				res.Failed++
				continue
			}
			res.Copied++
		}
		if len(tokens) < 500 {
			return res, nil
		}
	}
}
