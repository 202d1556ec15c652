package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/privicore/privicore/client"
)

// Register a profile, log in, and register a locally generated key, waiting
// for each command's outcome.
func Example() {
	ctx := context.Background()
	base := "http://127.0.0.1:8009"

	c := client.New(base)
	id, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: "alice", Password: "Tr0ub4dor&3-correct-horse"})
	if err != nil {
		log.Fatal(err)
	}
	out, err := c.WaitCommand(ctx, id) // no session yet: poll
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("profile id:", out.Body)

	s, err := client.Login(ctx, base, "alice", "Tr0ub4dor&3-correct-horse")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	privateHex, signedPublic, err := client.GenerateKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	_ = privateHex // store it safely: it never leaves this machine
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, signedPublic) }); err != nil {
		log.Fatal(err)
	}
}

// A rejected command is a *RejectedError carrying the reason key.
func ExampleSession_Await() {
	ctx := context.Background()
	s, err := client.Login(ctx, "http://127.0.0.1:8009", "alice", "Tr0ub4dor&3-correct-horse")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	id, err := s.ChangePassword(ctx, "not-my-password", "An0ther!strong-passphrase")
	if err != nil {
		log.Fatal(err) // a 422 for a weak new password comes back here, as a *client.Error
	}
	if _, err := s.Await(ctx, id); client.IsReason(err, "profile.wrong_password") {
		fmt.Println("wrong current password")
	}
}
