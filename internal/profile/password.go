package profile

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/password"
)

// Changing the password: checked now against the current one, committed
// by a command only if the password is still the one checked.

type changePasswordPayload struct {
	// Checked is the SHA-256 of the password hash the current password was
	// verified against, or "" if it did not match. The plaintext never
	// reaches the command log.
	Checked string `json:"checked"`
	NewHash string `json:"newHash"`
}

func hashOfHash(h string) string {
	sum := sha256.Sum256([]byte(h))
	return hex.EncodeToString(sum[:])
}

// ChangePassword submits a password change. A weak new password is
// EINVALID now; a wrong current password is the rejection
// profile.wrong_password, counted as a failed password check of the
// profile's username from addr (under the same limits as Authenticate:
// ERATELIMIT once they are spent). Issued tokens stay valid.
func (s *Service) ChangePassword(ctx context.Context, a *Auth, current, next, addr string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if current == "" {
		v.Add("currentPassword", "is required")
	}
	checkPassword(v, "newPassword", next)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p := a.Profile
	ok, err := s.verifyLimited(ctx, p.Username, addr, func() (bool, error) {
		if len(current) > MaxPassBytes {
			return false, nil
		}
		ok, err := s.hasher.Verify(ctx, p.PasswordHash, current)
		if errors.Is(err, password.ErrMalformed) {
			return false, nil
		}
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	var pl changePasswordPayload
	if ok {
		// A wrong current password is recorded as such (Checked empty); no
		// new hash is made for it.
		pl.Checked = hashOfHash(p.PasswordHash)
		if pl.NewHash, err = s.hasher.Hash(ctx, next); err != nil {
			return nil, err
		}
	}
	return s.cmds.Submit(ctx, p.ID, CmdChangePassword, pl)
}

func (s *Service) handleChangePassword(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var pl changePasswordPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	p, err := q.FindProfileByID(ctx, c.ProfileID)
	if err != nil {
		return command.Result{}, err
	}
	// The password must still be the one the current password was checked against.
	if pl.Checked == "" || subtle.ConstantTimeCompare([]byte(pl.Checked), []byte(hashOfHash(p.PasswordHash))) != 1 {
		return command.Result{}, privicore.Reject(ReasonWrongPassword, "current password is wrong")
	}
	p.PasswordHash = pl.NewHash
	p.UpdatedAt = s.now()
	return command.Result{}, q.UpdateProfile(ctx, p) // the store notes the change: every auth cache drops the profile
}
