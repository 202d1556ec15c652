package client

import (
	"context"
	"time"
)

// NewSessionPolling is NewSession with Await's safety-net poll every poll:
// with an hour, an outcome can only come on the socket or from the poll
// after a re-join, so a test asserts which path delivered it without timing
// anything.
func NewSessionPolling(ctx context.Context, c *Client, poll time.Duration) (*Session, error) {
	return newSession(ctx, c, poll)
}
