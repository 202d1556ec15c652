package profile

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/internal/command"
	"github.com/privicore/privicore/internal/password"
)

// Registration: a profile is created by a register command, its username
// prepared and unique case-insensitively (limits.go).

// RegisterInput is a register-profile request.
type RegisterInput struct {
	Username   string
	Password   string
	GivenName  string
	FamilyName string
}

type registerPayload struct {
	ProfileID    string `json:"profileId"`
	Username     string `json:"username"`
	GivenName    string `json:"givenName"`
	FamilyName   string `json:"familyName"`
	PasswordHash string `json:"passwordHash"`
}

// Register validates in and submits a register-profile command. The
// username is prepared by the PRECIS UsernameCasePreserved profile
// (PrepareUsername); a username taken case-insensitively is ECONFLICT now,
// or the rejection profile.username_taken if another registration wins the
// race. Registrations are rate-limited per client address addr (ERATELIMIT).
// The ack body is the new profile id.
func (s *Service) Register(ctx context.Context, in RegisterInput, addr string) (*privicore.Command, error) {
	v := privicore.ValidationErrors{}
	if name, err := PrepareUsername(in.Username); err != nil {
		v.Add("username", err.Error())
	} else {
		in.Username = name
	}
	checkPassword(v, "password", in.Password)
	if utf8.RuneCountInString(in.GivenName) > 255 {
		v.Add("givenName", "must be at most 255 characters")
	}
	if utf8.RuneCountInString(in.FamilyName) > 255 {
		v.Add("familyName", "must be at most 255 characters")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, err := s.store.FindProfileByUsername(ctx, in.Username); err == nil {
		return nil, &privicore.Error{Code: privicore.ECONFLICT, Reason: ReasonUsernameTaken, Message: "username is taken"}
	} else if privicore.ErrorCode(err) != privicore.ENOTFOUND {
		return nil, err
	}
	if ok, wait, err := s.registers.Allow(ctx, addr); err != nil {
		return nil, err
	} else if !ok {
		return nil, rateLimited(wait)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	id := ulid.Make().String()
	return s.cmds.Submit(ctx, id, CmdRegister, registerPayload{ProfileID: id, Username: in.Username,
		GivenName: in.GivenName, FamilyName: in.FamilyName, PasswordHash: hash})
}

func checkPassword(v privicore.ValidationErrors, field, pw string) {
	if pw == "" {
		v.Add(field, "is required")
	} else if len(pw) > MaxPassBytes {
		v.Add(field, "must be at most 1024 bytes")
	} else if err := password.CheckStrength(pw); err != nil {
		v.Add(field, err.Error())
	}
}

func (s *Service) handleRegister(ctx context.Context, q privicore.Queries, c *privicore.Command) (command.Result, error) {
	var p registerPayload
	if err := json.Unmarshal(c.Payload, &p); err != nil {
		return command.Result{}, privicore.Reject("command.bad_payload", "bad payload")
	}
	now := s.now()
	err := q.CreateProfile(ctx, &privicore.Profile{ID: p.ProfileID, Username: p.Username, GivenName: p.GivenName,
		FamilyName: p.FamilyName, PasswordHash: p.PasswordHash, CreatedAt: now, UpdatedAt: now})
	if privicore.ErrorCode(err) == privicore.ECONFLICT {
		return command.Result{}, privicore.Reject(ReasonUsernameTaken, "username is taken")
	} else if err != nil {
		return command.Result{}, err
	}
	return command.Result{Body: p.ProfileID}, nil
}
