package sqlstore

import "time"

// SetCheckpointing shortens the checkpointer's period and WAL threshold for
// one test; the returned function restores them.
func SetCheckpointing(every time.Duration, frames int) (restore func()) {
	e, f := checkpointEvery, walRestartFrames
	checkpointEvery, walRestartFrames = every, frames
	return func() { checkpointEvery, walRestartFrames = e, f }
}
