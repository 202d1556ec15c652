package device

import (
	"context"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
)

func (s *Service) handleAssignRole(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, p, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	switch {
	case d.State != privicore.DeviceApproved:
		return command.Result{}, privicore.Reject(ReasonNotApproved, "device not approved")
	case !Active(d):
		// Role ⇒ key: a storage device or authenticator always has the key
		// its traffic is checked against.
		return command.Result{}, privicore.Reject(ReasonPublicKeyRequired, "register the device's public key first")
	case d.Role != privicore.RoleNone:
		return command.Result{}, privicore.Reject(ReasonRoleTaken, "the device already has the role %s", d.Role)
	}
	d.Role = p.Role
	d.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDevice(ctx, d)
}

func (s *Service) handleDropRole(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	d, p, err := commandDevice(ctx, q, c)
	if err != nil {
		return command.Result{}, err
	}
	if d.Role != p.Role {
		return command.Result{}, privicore.Reject(ReasonRoleNotHeld, "the device does not have the role %s", p.Role)
	}
	d.Role = privicore.RoleNone
	d.UpdatedAt = s.now()
	return command.Result{}, q.UpdateDevice(ctx, d)
}
