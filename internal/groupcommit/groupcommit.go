// Package groupcommit batches requests for one writer: whatever is queued
// when the writer gets free goes out together, so that one durable commit
// (an fsync) serves many requests.
package groupcommit

import "time"

// Run serves in until stop is closed, calling commit with batches of at
// most max requests: the first one waited for, plus everything already
// queued. After stop it drains what was queued, so that nothing accepted is
// dropped, then returns.
func Run[T any](in <-chan T, stop <-chan struct{}, max int, commit func([]T)) {
	RunLinger(in, stop, max, 0, commit)
}

// RunLinger is Run, except that under load (the previous batch held more
// than one request) a batch smaller than max waits up to linger for more
// before it is committed: fewer, fuller commits when each costs much more
// than a request. An idle writer never waits.
func RunLinger[T any](in <-chan T, stop <-chan struct{}, max int, linger time.Duration, commit func([]T)) {
	var timer *time.Timer
	last := 0
	for {
		var first T
		select {
		case first = <-in:
		case <-stop:
			for {
				select {
				case r := <-in:
					commit([]T{r})
				default:
					return
				}
			}
		}
		batch := []T{first}
	fill:
		for len(batch) < max {
			select {
			case r := <-in:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if linger > 0 && last > 1 && len(batch) < max {
			if timer == nil {
				timer = time.NewTimer(linger)
			} else {
				timer.Reset(linger)
			}
		wait:
			for len(batch) < max {
				select {
				case r := <-in:
					batch = append(batch, r)
				case <-timer.C:
					break wait
				case <-stop:
					break wait
				}
			}
			timer.Stop()
		}
		last = len(batch)
		commit(batch)
	}
}
