package groupcommit

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestBatchesWhatIsQueuedAndDrainsOnStop(t *testing.T) {
	in := make(chan int, 100)
	stop := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	release := make(chan struct{})
	busy := make(chan struct{})
	done := make(chan struct{})
	go func() {
		Run(in, stop, 4, func(b []int) {
			mu.Lock()
			batches = append(batches, append([]int(nil), b...))
			first := len(batches) == 1
			mu.Unlock()
			if first {
				close(busy)
				<-release // the writer is busy: the next requests queue up
			}
		})
		close(done)
	}()
	in <- 0
	<-busy // the first batch is being committed: what follows queues behind it
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

// lingering runs RunLinger (batches of at most 8) whose commits each wait
// for a release, and returns its batches, its input and the release
// channel; it ends with the test.
func lingering(t *testing.T, linger time.Duration) (batches chan []int, in chan int, release chan struct{}) {
	in = make(chan int, 100)
	stop := make(chan struct{})
	batches = make(chan []int, 100)
	release = make(chan struct{}, 100) // one per batch: the commit "takes" until released
	done := make(chan struct{})
	go func() {
		RunLinger(in, stop, 8, linger, func(b []int) {
			batches <- append([]int(nil), b...)
			<-release
		})
		close(done)
	}()
	t.Cleanup(func() {
		close(stop)
		close(release) // every commit returns
		<-done
	})
	return batches, in, release
}

// next returns the next batch and fails unless it holds want requests.
// Its deadline only guards a hang: with a linger of an hour, a batch that
// waits for it never comes.
func next(t *testing.T, batches chan []int, want ...int) {
	t.Helper()
	select {
	case b := <-batches:
		if fmt.Sprint(b) != fmt.Sprint(want) {
			t.Fatalf("batch %v, want %v", b, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no batch; want %v", want)
	}
}

// An idle writer never waits, and neither does a full batch: with a linger
// of an hour, such batches still go out.
func TestLingerWaitsOnlyUnderLoad(t *testing.T) {
	batches, in, release := lingering(t, time.Hour)
	// Idle: a lone request is committed at once.
	in <- 1
	next(t, batches, 1)
	release <- struct{}{}
	// While a commit runs, requests queue and go out together, at once
	// (the previous batch held one: no load yet).
	in <- 2
	next(t, batches, 2)
	in <- 3
	in <- 4
	release <- struct{}{}
	next(t, batches, 3, 4)
	// Under load (the last batch held two): requests trickling in join one
	// batch, which goes out once full.
	in <- 5
	release <- struct{}{}
	for i := 6; i <= 12; i++ {
		time.Sleep(time.Millisecond)
		in <- i
	}
	next(t, batches, 5, 6, 7, 8, 9, 10, 11, 12)
	// A full batch does not wait.
	for i := range 8 {
		in <- 20 + i
	}
	release <- struct{}{}
	next(t, batches, 20, 21, 22, 23, 24, 25, 26, 27)
}

// Under load a batch that does not fill up is committed when the linger
// runs out, not before.
func TestLingerRunsOut(t *testing.T) {
	const linger = 300 * time.Millisecond
	batches, in, release := lingering(t, linger)
	in <- 1
	next(t, batches, 1)
	in <- 2
	in <- 3
	release <- struct{}{}
	next(t, batches, 2, 3) // under load from now on
	start := time.Now()
	in <- 4
	release <- struct{}{}
	next(t, batches, 4)
	if took := time.Since(start); took < linger {
		t.Fatalf("a lone request under load was committed after %v, before the linger (%v) ran out", took, linger)
	}
}
