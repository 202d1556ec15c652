// Package groupcommit batches requests for one writer: whatever is queued
// when the writer gets free goes out together, so that one durable commit
// (an fsync) serves many requests.
package groupcommit

// Run serves in until stop is closed, calling commit with batches of at
// most max requests: the first one waited for, plus everything already
// queued. After stop it drains what was queued, so that nothing accepted is
// dropped, then returns.
func Run[T any](in <-chan T, stop <-chan struct{}, max int, commit func([]T)) {
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
		commit(batch)
	}
}
