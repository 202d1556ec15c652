package device

import (
	"context"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/protocol"
)

// Active reports whether d may connect to the bus and hold a role: it is
// approved and its public key is registered.
func Active(d *privicore.Device) bool {
	return d.State == privicore.DeviceApproved && d.PublicKey != ""
}

// approve marks d approved and gives it its bus user.
func (s *Service) approve(d *privicore.Device) {
	d.State = privicore.DeviceApproved
	d.ClientID = protocol.ClientID(d.ID)
}

func (s *Service) handleApprove(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	// A device may be approved before its key is registered (the
	// reference's clients do): it is then approved but not active — its
	// bundle can be downloaded, but the bus refuses it and it cannot take a
	// role until its key is registered.
	if d.State == privicore.DeviceApproved {
		return command.Result{}, privicore.Reject(ReasonAlreadyApproved, "device already approved")
	}
	s.approve(d)
	d.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDevice(ctx, d)
}

func (s *Service) handleReject(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if d.State != privicore.DevicePending {
		return command.Result{}, privicore.Reject(ReasonAlreadyApproved, "only pending devices can be rejected; remove an approved one")
	}
	return command.Result{}, q.DeleteDevice(ctx, d.ID)
}

func (s *Service) handleRemove(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, _, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if err := q.DeleteDevice(ctx, d.ID); err != nil {
		return command.Result{}, err
	}
	// Once the removal is committed, its credentials no longer authenticate;
	// close the connection it already has.
	return command.Result{After: func() { s.bus.Disconnect(d.ClientID) }}, nil
}
