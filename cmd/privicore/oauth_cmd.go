package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/client"
)

// addOAuthCommands adds `privicore oauth …`: the owner's side (register,
// config, list, scope, revoke, consent) with the logged-in profile, and the
// application's side (token, refresh) with client credentials.
func addOAuthCommands(root *cobra.Command, e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) {
	cmd := &cobra.Command{Use: "oauth", Short: "OAuth applications: delegated, scoped, revocable access"}

	var name, redirect string
	var scopes []string
	register := &cobra.Command{Use: "register", Short: "Register an application (prints its id)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withSession(e, func(ctx context.Context, s *client.Session) error {
				out, err := s.Do(ctx, func() (string, error) { return s.RegisterOAuthApplication(ctx, name, redirect, scopes) })
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, out.CommandID)
				fmt.Fprintf(e.stderr, "Retrieve its client secret (shown once) with: privicore oauth config %s\n", out.CommandID)
				return nil
			})
		}}
	register.Flags().StringVar(&name, "name", "", "application name")
	register.Flags().StringVar(&redirect, "redirect-uri", "", "absolute https URL (http only for loopback)")
	register.Flags().StringSliceVar(&scopes, "scope", nil, "scopes (repeat or comma-separate): "+strings.Join(privicore.Scopes, ", "))

	config := &cobra.Command{Use: "config APP-ID", Short: "Print the client id and secret (works once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				cfg, err := c.OAuthConfiguration(ctx, args[0])
				if err != nil {
					return err
				}
				return printIndented(e, cfg)
			})
		}}

	list := &cobra.Command{Use: "list", Short: "List your applications", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				apps, err := c.OAuthApplications(ctx)
				if err != nil {
					return err
				}
				w := newTable(e, "APPLICATION\tNAME\tSCOPES\tREDIRECT URI")
				for _, a := range apps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.ApplicationID, a.Name, strings.Join(a.Scopes, ","), a.RedirectURI)
				}
				return w.Flush()
			})
		}}

	scope := &cobra.Command{Use: "scope APP-ID", Short: "Print an application's scopes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				sc, err := c.OAuthApplicationScope(ctx, args[0])
				if err == nil {
					fmt.Fprintln(e.stdout, strings.Join(sc, " "))
				}
				return err
			})
		}}

	revoke := &cobra.Command{Use: "revoke APP-ID", Short: "Remove an application: every token it holds dies at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.submit(e, ack{say: "Revoked."}, func(ctx context.Context, s *client.Session) (string, error) {
				return s.RemoveOAuthApplication(ctx, args[0])
			})
		}}

	var consentScopes []string
	consent := &cobra.Command{Use: "consent CLIENT-ID", Short: "Consent to a grant; prints the request id and nonce to give the application", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withSession(e, func(ctx context.Context, s *client.Session) error {
				nonce := client.NewNonce()
				out, err := s.Do(ctx, func() (string, error) { return s.RequestAuthorizationCode(ctx, args[0], nonce, consentScopes) })
				if err != nil {
					return err
				}
				return printIndented(e, map[string]string{"id": out.CommandID, "nonce": nonce})
			})
		}}
	consent.Flags().StringSliceVar(&consentScopes, "scope", nil, "scopes to grant (within the application's)")

	var clientID, clientSecret, id, nonce, refreshToken string
	appFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&clientID, "client-id", "", "the application's client id")
		c.Flags().StringVar(&clientSecret, "client-secret", "", "the application's client secret (else $PRIVICORE_CLIENT_SECRET)")
	}
	secret := func() string {
		if clientSecret != "" {
			return clientSecret
		}
		return e.getenv("PRIVICORE_CLIENT_SECRET")
	}
	token := &cobra.Command{Use: "token", Short: "As the application: retrieve the code and exchange it for tokens", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := client.New(f.resolveServer(e))
			code, err := c.RetrieveAuthorizationCode(e.ctx, clientID, secret(), id, nonce)
			if err != nil {
				return err
			}
			t, err := c.ObtainAccessToken(e.ctx, clientID, secret(), code.AuthorizationCode)
			if err != nil {
				return err
			}
			return printIndented(e, t)
		}}
	appFlags(token)
	token.Flags().StringVar(&id, "id", "", "the request id from `oauth consent`")
	token.Flags().StringVar(&nonce, "nonce", "", "the nonce from `oauth consent`")

	refresh := &cobra.Command{Use: "refresh REFRESH-TOKEN", Short: "As the application: rotate a token pair", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			refreshToken = args[0]
			t, err := client.New(f.resolveServer(e)).RefreshAccessToken(e.ctx, clientID, secret(), refreshToken)
			if err != nil {
				return err
			}
			return printIndented(e, t)
		}}
	appFlags(refresh)

	for _, c := range []*cobra.Command{register, config, list, scope, revoke, consent, token, refresh} {
		cmd.AddCommand(withServer(c))
	}
	root.AddCommand(cmd)
}

// resolveServer is the engine URL without needing a login.
func (f *clientFlags) resolveServer(e *env) string {
	c, err := loadConfig(e)
	if err != nil {
		c = &config{}
	}
	return f.resolve(e, c)
}
