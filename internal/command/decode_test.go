package command_test

import (
	"encoding/json"

	"github.com/privicore/privicore"
)

func decode(c *privicore.Command, v any) error { return json.Unmarshal(c.Payload, v) }
