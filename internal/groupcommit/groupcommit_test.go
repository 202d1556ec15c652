package groupcommit

import (
	"runtime"
	"sync"
	"testing"
)

func TestBatchesWhatIsQueuedAndDrainsOnStop(t *testing.T) {
	in := make(chan int, 100)
	stop := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		Run(in, stop, 4, func(b []int) {
			mu.Lock()
			batches = append(batches, append([]int(nil), b...))
			first := len(batches) == 1
			mu.Unlock()
			if first {
				<-release // the writer is busy: the next requests queue up
			}
		})
		close(done)
	}()
	in <- 0
	for len(in) > 0 {
		runtime.Gosched()
	}
	for i := 1; i <= 10; i++ {
		in <- i
	}
	close(release)
	for len(in) > 0 {
		runtime.Gosched()
	}
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	seen, max := 0, 0
	for _, b := range batches {
		seen += len(b)
		if len(b) > max {
			max = len(b)
		}
	}
	if seen != 11 || max != 4 || len(batches[0]) != 1 {
		t.Fatalf("batches %v: want all 11 requests, batches of at most 4, queued ones batched", batches)
	}
}
