// Package lease makes periodic jobs run once cluster-wide. A job has a
// named lease in the database (privicore.LeaseStore): one owner, a
// replica, until it expires. A Set is one replica's leases: it takes each
// when it is free, renews those it holds every TTL/3 and releases them when
// it closes; a job runs only while its replica holds the job's lease
// (Lease.Held, Lease.Do). A replica that dies holding a lease loses it at
// expiry, and the next replica to try takes it over.
//
// A Set believes it holds a lease for 3/4 of the TTL from the start of the
// call that took or renewed it, so it stops before the lease expires in the
// database, with a quarter of the TTL as margin for the replicas' clocks.
// On SQLite there is one engine: it is always the holder, at one small
// write per lease every TTL/3.
package lease

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privicore/privicore"
)

// DefaultTTL is a lease's lifetime when Options.TTL is zero: a dead
// replica's jobs resume elsewhere within about that long.
const DefaultTTL = 15 * time.Second

// Options tunes a Set.
type Options struct {
	TTL time.Duration // lease lifetime; default DefaultTTL; renewed every TTL/3
	// Sole says the owner is alone on its database (SQLite): a lease is
	// taken at once whoever held it (the process before this one).
	Sole   bool
	Logger *slog.Logger // default: discard
}

// Set is the leases of one owner (a replica).
type Set struct {
	store privicore.LeaseStore
	owner string
	opts  Options
	log   *slog.Logger

	mu     sync.Mutex
	leases []*Lease
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewSet returns owner's leases in store, renewed from now on until Close.
func NewSet(store privicore.LeaseStore, owner string, opts Options) *Set {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{store: store, owner: owner, opts: opts, log: opts.Logger, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.renewer()
	return s
}

// Lease returns the lease named name, kept by the set from now on: it is
// tried at once (so a sole engine holds it on return), then renewed or
// tried again every TTL/3. Asking twice for a name returns one lease.
func (s *Set) Lease(name string) *Lease {
	s.mu.Lock()
	for _, l := range s.leases {
		if l.name == name {
			s.mu.Unlock()
			return l
		}
	}
	l := &Lease{name: name, set: s}
	s.leases = append(s.leases, l)
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.keep(l, s.opts.Sole)
	}
	return l
}

// renewer keeps every lease of the set every TTL/3.
func (s *Set) renewer() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			leases := append([]*Lease(nil), s.leases...)
			s.mu.Unlock()
			for _, l := range leases {
				s.keep(l, false)
			}
		}
	}
}

// keep takes or renews l (take: whoever holds it). On an error l keeps
// what it had: held until its time runs out.
func (s *Set) keep(l *Lease, take bool) {
	ttl := s.opts.TTL
	ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
	defer cancel()
	start := time.Now() // monotonic: the lease is believed held from here
	var held bool
	var err error
	if take {
		err = s.store.TakeLease(ctx, l.name, s.owner, start, ttl)
		held = err == nil
	} else {
		held, err = s.store.AcquireLease(ctx, l.name, s.owner, start, ttl)
	}
	if err != nil {
		s.log.Warn("lease renewal failed", "lease", l.name, "owner", s.owner, "err", err)
		return
	}
	var until time.Time
	if held {
		until = start.Add(ttl - ttl/4)
	}
	if was := l.setUntil(until); was != held {
		if held {
			s.log.Info("lease taken", "lease", l.name, "owner", s.owner)
		} else {
			s.log.Info("lease held by another replica", "lease", l.name, "owner", s.owner)
		}
	}
}

// Close stops renewing the leases and releases those held: another
// replica takes them at its next try, without waiting for their expiry.
func (s *Set) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	leases := append([]*Lease(nil), s.leases...)
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	for _, l := range leases {
		if l.setUntil(time.Time{}) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.store.ReleaseLease(ctx, l.name, s.owner); err != nil {
				s.log.Warn("lease release failed", "lease", l.name, "owner", s.owner, "err", err)
			}
			cancel()
		}
	}
}

// Lease is one named lease of a Set. A nil *Lease is always held: the
// job it guards runs everywhere (a component used without a Set).
type Lease struct {
	name string
	set  *Set
	runs atomic.Int64

	mu    sync.Mutex
	until time.Time // held before this (monotonic); zero: not held
}

// Held reports whether the set holds the lease now (a nil lease: true).
func (l *Lease) Held() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.until.IsZero() && time.Now().Before(l.until)
}

// Do runs job if the lease is held and reports whether it did. A nil
// lease always runs it.
func (l *Lease) Do(job func()) bool {
	if !l.Held() {
		return false
	}
	if l != nil {
		l.runs.Add(1)
	}
	job()
	return true
}

// Runs is how many times Do ran its job here.
func (l *Lease) Runs() int64 { return l.runs.Load() }

// setUntil sets the time the lease is held until and reports whether it
// was held before.
func (l *Lease) setUntil(until time.Time) (wasHeld bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wasHeld = !l.until.IsZero() && time.Now().Before(l.until)
	l.until = until
	return wasHeld
}
