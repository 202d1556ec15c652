package client_test

import (
	"context"
	"crypto/ecdh"
	"sync"
	"testing"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/keys"
)

// device enrolls an approved device of s's profile, gives it a role with
// role (RegisterStorage, RegisterAuthenticator) and returns its id and key.
func device(t *testing.T, s *client.Session, name string, role func(context.Context, string) (string, error)) (string, *ecdh.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	out, err := s.Do(ctx, func() (string, error) { return s.RequestDeviceIdentifier(ctx, name) })
	if err != nil {
		t.Fatal(err)
	}
	id := out.Body
	priv, _ := keys.Generate()
	for _, step := range []func() (string, error){
		func() (string, error) { return s.RegisterDeviceKey(ctx, id, keys.SignedPublic(priv)) },
		func() (string, error) { return s.ApproveDevice(ctx, id) },
		func() (string, error) { return role(ctx, id) },
	} {
		if _, err := s.Do(ctx, step); err != nil {
			t.Fatalf("device %s: %v", name, err)
		}
	}
	return id, priv
}

// TestRetrieveEndsWhenTheVoteFails: a policy gates reads, the one
// authenticator never answers (it is not running), the vote's time limit
// is short. Retrieve returns the rejection voting.expired once the engine
// decided it, and hands over the vote's pool events while it waits.
func TestRetrieveEndsWhenTheVoteFails(t *testing.T) {
	t.Parallel() // waits 5 s for the vote to expire: runs beside the others
	_, s := loggedIn(t)
	ctx := context.Background()
	_, pub, _ := client.GenerateKeyPair()
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) }); err != nil {
		t.Fatal(err)
	}
	dev, priv := device(t, s, "storage", s.RegisterStorage)
	runStorageDevice(t, s, dev, priv)
	device(t, s, "phone", s.RegisterAuthenticator) // never started: nobody answers

	key := client.NewDataKey()
	dtk, err := s.Store(ctx, key, []byte("gated"), client.FileMeta{FileName: "f"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() (string, error){
		func() (string, error) { return s.SetVotingTimeLimit(ctx, 5*time.Second) }, // the shortest allowed
		func() (string, error) {
			return s.RegisterPolicy(ctx, client.Policy{Name: "reads", PolicyTemplateID: "data-protection", ApplyingEventIDs: []string{"dt-request"}})
		},
		func() (string, error) { return s.ChangePolicy(ctx, "activate", "reads") },
	} {
		if _, err := s.Do(ctx, step); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var votes []client.PoolEvent
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second) // a guard: the vote ends after 5 s
	defer cancel()
	_, err = s.Retrieve(rctx, key, dtk, client.OnVote(func(ev client.PoolEvent) {
		mu.Lock()
		votes = append(votes, ev)
		mu.Unlock()
	}))
	if !client.IsReason(err, "voting.expired") {
		t.Fatalf("retrieve: %v, want the rejection voting.expired", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(votes) != 2 || votes[0].Type != client.EventPoolOpened || votes[1].Type != client.EventPoolResolved {
		t.Fatalf("pool events %+v, want opened then resolved", votes)
	}
	opened := votes[0]
	if opened.PoolID == "" || opened.CommandID == "" || opened.Event != "data-token.request-data" || opened.Attempt != 1 || opened.ExpiresAt.IsZero() ||
		votes[1].PoolID != opened.PoolID || votes[1].CommandID != opened.CommandID || votes[1].State != "expired" {
		t.Fatalf("pool events %+v", votes)
	}
	st, err := s.PoolStatus(ctx, opened.PoolID)
	if err != nil || st.State != "expired" || st.CommandID != opened.CommandID || !st.ExpiresAt.Equal(opened.ExpiresAt) {
		t.Fatalf("pool %+v %v, want the announced one, expired", st, err)
	}
	if _, err := s.Await(ctx, opened.CommandID); !client.IsReason(err, "voting.expired") {
		t.Fatalf("the request command: %v", err)
	}
}

// TestAwaitHandsOverPoolEvents: an ad-hoc vote's command, awaited with
// OnVote after its pool opened, gets the events that came before the wait
// and then the cancellation's.
func TestAwaitHandsOverPoolEvents(t *testing.T) {
	_, s := loggedIn(t)
	ctx := context.Background()
	_, pub, _ := client.GenerateKeyPair()
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) }); err != nil {
		t.Fatal(err)
	}
	device(t, s, "phone", s.RegisterAuthenticator) // never started
	v, err := s.CreateVote(ctx, "", "Release", "Deploy?", "n-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second) // a guard
	defer cancel()
	got := make(chan client.PoolEvent, 8)
	done := make(chan error, 1)
	go func() {
		_, err := s.Await(wctx, v.CommandID, client.OnVote(func(ev client.PoolEvent) { got <- ev }))
		done <- err
	}()
	select {
	case ev := <-got:
		if ev.Type != client.EventPoolOpened || ev.PoolID != v.PoolID || ev.CommandID != v.CommandID || ev.Event != "voting.create" {
			t.Fatalf("first event %+v", ev)
		}
	case err := <-done:
		t.Fatalf("await ended first: %v", err)
	case <-wctx.Done():
		t.Fatal("no POOL-OPENED handed over")
	}
	if _, err := s.Do(ctx, func() (string, error) { return s.CancelPool(ctx, v.PoolID) }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !client.IsReason(err, "voting.cancelled") {
		t.Fatalf("await: %v", err)
	}
	close(got)
	var rest []client.PoolEvent
	for ev := range got {
		rest = append(rest, ev)
	}
	if len(rest) != 1 || rest[0].Type != client.EventPoolResolved || rest[0].State != "cancelled" {
		t.Fatalf("events after the first: %+v", rest)
	}
}
