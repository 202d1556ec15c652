package privicore

import (
	"context"
	"time"
)

// Announcer is a replica's promise about the acks of the outcomes it
// records (shared mode, internal/command): every outcome it recorded with
// UpdatedAt before Through has been handed to the bus, and it is alive
// until Until, renewing both while it runs.
type Announcer struct {
	Replica string
	Through time.Time
	Until   time.Time
}

// AnnouncerStore keeps the announcers, so that the acks of a replica that
// died between recording outcomes and publishing them are published by
// another (command.Options.Announcers). Times are the announcing replica's
// clock, as the outcomes' UpdatedAt are.
type AnnouncerStore interface {
	// KeepAnnouncer records or renews a.
	KeepAnnouncer(ctx context.Context, a Announcer) error
	// EndAnnouncer removes replica's announcer: it announced everything
	// (it stopped), or another replica announced what it may not have.
	EndAnnouncer(ctx context.Context, replica string) error
	// LapsedAnnouncers lists the announcers whose Until is before before:
	// replicas that died without ending theirs.
	LapsedAnnouncers(ctx context.Context, before time.Time) ([]Announcer, error)
	// UnannouncedCommands lists up to limit finished commands whose
	// Announcer is replica, updated at or after since, ordered by
	// (UpdatedAt, ID) and after the command afterID updated at since
	// (paging; "" for the first page).
	UnannouncedCommands(ctx context.Context, replica string, since time.Time, afterID string, limit int) ([]*Command, error)
}
