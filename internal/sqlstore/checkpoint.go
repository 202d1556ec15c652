package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// walRestartWait bounds how long the writer waits for readers still on the
// old WAL when it starts the WAL over.
const walRestartWait = 50 * time.Millisecond

// Checkpointing (see checkpointer); variables so that tests can shorten them.
var (
	// checkpointEvery is the background checkpoint's period.
	checkpointEvery = time.Second
	// walRestartFrames is the WAL length (pages) past which the writer
	// finishes a checkpoint itself: 16 MiB with SQLite's 4 KiB pages.
	walRestartFrames = 4096
)

// walSizeLimit is what a started-over WAL file is truncated to.
const walSizeLimit = 64 << 20

// checkpointer copies the WAL into the database file every second, without
// blocking the writer (a passive checkpoint).
//
// Under a steady load that is not enough: SQLite starts the WAL over only
// when a checkpoint has copied every frame, and commits keep appending
// while a background checkpoint runs, so the WAL would grow without bound
// (hundreds of MiB within seconds of load, each commit extending the file
// and syncing its metadata). When the WAL is long, the writer therefore
// runs a restart checkpoint between two batches (finishCheckpoint): only
// the frames appended meanwhile are left to copy, nothing is appended
// during it, it waits briefly for readers still on the old WAL, and the
// next commit writes from the start of the file again.
func (d *DB) checkpointer() {
	defer d.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			var busy, frames, copied int
			if err := d.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
				continue
			}
			if frames >= walRestartFrames {
				d.walLong.Store(true)
			}
		}
	}
}

// finishCheckpoint runs in the writer between batches when the WAL is long
// (see checkpointer): a restart checkpoint copies what the background one
// left and waits, at most walRestartWait, for the readers still on the old
// WAL, so that the next commit writes from the start of the file.
func (d *DB) finishCheckpoint() {
	if !d.walLong.CompareAndSwap(true, false) {
		return
	}
	ctx := context.Background()
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", walRestartWait.Milliseconds()))
	conn.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)")
	conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", busyTimeout.Milliseconds()))
}
