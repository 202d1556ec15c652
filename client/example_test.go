package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

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

// Generate a key pair locally: the private key never leaves the machine.
func ExampleGenerateKeyPair() {
	privateHex, signedPublic, err := client.GenerateKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(privateHex), len(signedPublic))
	// Output: 64 200
}

// A client for an engine whose channel proxy listens on its own port, with a
// token saved earlier.
func ExampleNew() {
	c := client.New("http://127.0.0.1:8009",
		client.WithWebSocketURL("ws://127.0.0.1:8083/"),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		client.WithToken(os.Getenv("PRIVICORE_TOKEN")))
	id, err := c.ProfileID(context.Background())
	if client.IsStatus(err, 401) {
		log.Fatal("log in again")
	}
	fmt.Println(id)
}

// API errors are *client.Error values carrying the §0 error body.
func ExampleError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		fmt.Fprint(w, `{"error":"validation_failed","message":"invalid fields","errors":{"password":["too weak"]}}`)
	}))
	defer srv.Close()

	_, err := client.New(srv.URL).RegisterProfile(context.Background(), client.RegisterProfileRequest{Username: "alice", Password: "weak"})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code, apiErr.Fields["password"])
	}
	fmt.Println(err)
	// Output:
	// 422 validation_failed [too weak]
	// 422 validation_failed: invalid fields; password: too weak
}

// Reuse a token (e.g. from a config file) for a session, and follow every
// event of the profile.
func ExampleNewSession() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8009", client.WithToken(os.Getenv("PRIVICORE_TOKEN")))
	s, err := client.NewSession(ctx, c) // a 401 *client.Error for a bad token
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	go func() {
		for ev := range s.Events() { // closed by Close
			fmt.Println(ev.Type, ev.ID, ev.CommandStatus, ev.Body)
		}
	}()
	out, err := s.Do(ctx, func() (string, error) {
		return s.ChangePassword(ctx, "current-passphrase", "An0ther!strong-passphrase")
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Body)
}

// Without a session, wait for a command by polling its status.
func ExampleClient_WaitCommand() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8009")
	id, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: "bob", Password: "Tr0ub4dor&3-correct-horse", GivenName: "Bob"})
	if err != nil {
		log.Fatal(err) // 409 taken, 422 weak password: *client.Error
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := c.WaitCommand(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("profile id:", out.Body)
}

// The OAuth authorization-code flow: the profile registers an application
// and consents; the application retrieves the code with its client
// credentials and the nonce, exchanges it for tokens, acts within its
// scopes, and refreshes before the access token expires (an hour).
func ExampleClient_ObtainAccessToken() {
	ctx := context.Background()
	base := "http://127.0.0.1:8009"
	owner, err := client.Login(ctx, base, "alice", "Tr0ub4dor&3-correct-horse")
	if err != nil {
		log.Fatal(err)
	}
	defer owner.Close()

	// The owner, once: register, and keep the client secret (shown once).
	out, err := owner.Do(ctx, func() (string, error) {
		return owner.RegisterOAuthApplication(ctx, "invoice sync", "https://sync.example/callback", []string{"data-token:read"})
	})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := owner.OAuthConfiguration(ctx, out.CommandID)
	if err != nil {
		log.Fatal(err)
	}

	// The owner consents to a grant; the request id and the nonce go to the application.
	nonce := client.NewNonce()
	grant, err := owner.Do(ctx, func() (string, error) {
		return owner.RequestAuthorizationCode(ctx, cfg.ClientID, nonce, []string{"data-token:read"})
	})
	if err != nil {
		log.Fatal(err)
	}

	// The application: code, then tokens (each step works once).
	app := client.New(base)
	code, err := app.RetrieveAuthorizationCode(ctx, cfg.ClientID, cfg.ClientSecret, grant.CommandID, nonce)
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := app.ObtainAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, code.AuthorizationCode)
	if err != nil {
		log.Fatal(err)
	}
	as := client.New(base, client.WithToken(tokens.AccessToken))
	page, err := as.ListDataTokens(ctx, 1, 25, nil) // within data-token:read
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page.Meta.Total, "tokens")

	// Later: rotate (the old pair stops working).
	tokens, err = app.RefreshAccessToken(ctx, cfg.ClientID, cfg.ClientSecret, tokens.RefreshToken)
	if err != nil {
		log.Fatal(err)
	}
	as.SetToken(tokens.AccessToken)
}
