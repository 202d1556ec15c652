package groupcommit

import (
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

func TestLingerWaitsOnlyUnderLoad(t *testing.T) {
	in := make(chan int, 100)
	stop := make(chan struct{})
	batches := make(chan []int, 100)
	release := make(chan struct{}, 100) // one per batch: the commit "takes" until released
	done := make(chan struct{})
	go func() {
		RunLinger(in, stop, 8, 300*time.Millisecond, func(b []int) {
			batches <- append([]int(nil), b...)
			<-release
		})
		close(done)
	}()
	next := func(want int, within time.Duration, since time.Time) []int {
		t.Helper()
		select {
		case b := <-batches:
			if len(b) != want || time.Since(since) > within {
				t.Fatalf("batch %v after %v, want %d requests within %v", b, time.Since(since), want, within)
			}
			return b
		case <-time.After(5 * time.Second):
			t.Fatal("no batch")
			return nil
		}
	}

	// Idle: a lone request is committed at once.
	start := time.Now()
	in <- 1
	next(1, 150*time.Millisecond, start)
	release <- struct{}{}
	// While a commit runs, requests queue and go out together, at once
	// (the previous batch held one: no load yet).
	start = time.Now()
	in <- 2
	next(1, 150*time.Millisecond, start)
	in <- 3
	in <- 4
	release <- struct{}{}
	next(2, 150*time.Millisecond, start)
	// Under load: requests trickling in within the linger join one batch.
	start = time.Now()
	in <- 5
	release <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	in <- 6
	time.Sleep(20 * time.Millisecond)
	in <- 7
	if b := next(3, 5*time.Second, start); time.Since(start) < 250*time.Millisecond {
		t.Fatalf("batch %v committed after %v, before the linger ran out", b, time.Since(start))
	}
	// A full batch does not wait.
	for i := range 8 {
		in <- 10 + i
	}
	start = time.Now()
	release <- struct{}{}
	next(8, 150*time.Millisecond, start)
	release <- struct{}{}
	close(stop)
	<-done
}
