package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/keys"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server string
}

// server is --server, else PRIVICORE_SERVER, else the saved server, else the default.
func (f *clientFlags) resolve(e *env, c *config) string {
	switch {
	case f.server != "":
		return f.server
	case e.getenv("PRIVICORE_SERVER") != "":
		return e.getenv("PRIVICORE_SERVER")
	case c.Server != "":
		return c.Server
	}
	return defaultServer
}

// loggedIn returns a client with the saved token.
func (f *clientFlags) loggedIn(e *env) (*client.Client, *config, error) {
	c, err := loadConfig(e)
	if err != nil {
		return nil, nil, err
	}
	if c.Token == "" {
		return nil, nil, errors.New("not logged in: run `privicore login` first")
	}
	return client.New(f.resolve(e, c), client.WithToken(c.Token)), c, nil
}

// readLines reads n lines from stdin.
func readLines(e *env, n int) ([]string, error) {
	sc := bufio.NewScanner(e.stdin)
	var out []string
	for len(out) < n && sc.Scan() {
		out = append(out, strings.TrimRight(sc.Text(), "\r"))
	}
	if len(out) < n {
		return nil, fmt.Errorf("expected %d line(s) on standard input", n)
	}
	return out, nil
}

// password reads the password from stdin (--password-stdin) or PRIVICORE_PASSWORD.
func password(e *env, fromStdin bool) (string, error) {
	if fromStdin {
		l, err := readLines(e, 1)
		if err != nil {
			return "", err
		}
		return l[0], nil
	}
	if p := e.getenv("PRIVICORE_PASSWORD"); p != "" {
		return p, nil
	}
	return "", errors.New("give the password on standard input with --password-stdin (or in PRIVICORE_PASSWORD)")
}

// passwordFlags are the ways a command takes one password: --password-stdin
// (first line of standard input), --password (accepted with a warning: it
// ends up in shell history and process listings), or PRIVICORE_PASSWORD.
type passwordFlags struct {
	fromStdin bool
	value     string
}

func (p *passwordFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().StringVar(&p.value, "password", "", "the password (unsafe: prefer --password-stdin or PRIVICORE_PASSWORD)")
}

// get returns the password, warning on stderr when it came from --password.
func (p *passwordFlags) get(e *env) (string, error) {
	if !p.fromStdin && p.value != "" {
		fmt.Fprintln(e.stderr, "privicore: warning: --password is visible in shell history and process listings; use --password-stdin or PRIVICORE_PASSWORD")
		return p.value, nil
	}
	if p.fromStdin && p.value != "" {
		return "", errors.New("give --password-stdin or --password, not both")
	}
	return password(e, p.fromStdin)
}

// addClientCommands adds the command-line client built on the SDK.
func addClientCommands(root *cobra.Command, e *env) {
	f := &clientFlags{}
	withServer := func(c *cobra.Command) *cobra.Command {
		c.PersistentFlags().StringVar(&f.server, "server", "", "engine URL (default $PRIVICORE_SERVER, the saved server, or "+defaultServer+")")
		return c
	}

	profile := &cobra.Command{Use: "profile", Short: "Manage your profile"}
	profile.AddCommand(withServer(newRegisterCmd(e, f)), withServer(newWhoamiCmd(e, f)),
		withServer(newPasswdCmd(e, f)), withServer(newLogoutCmd(e, f)))
	key := &cobra.Command{Use: "key", Short: "Generate and register your key pair"}
	key.AddCommand(newKeyGenerateCmd(e), withServer(newKeyRegisterCmd(e, f)))
	root.AddCommand(profile, key, withServer(newLoginCmd(e, f)))
	addDataCommands(root, e, f, withServer)
	addOAuthCommands(root, e, f, withServer)
	addVotingCommands(root, e, f, withServer)
}

func newRegisterCmd(e *env, f *clientFlags) *cobra.Command {
	var req client.RegisterProfileRequest
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a new profile",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Username == "" {
				return errors.New("--username is required")
			}
			p, err := pw.get(e)
			if err != nil {
				return err
			}
			req.Password = p
			conf, err := loadConfig(e)
			if err != nil {
				return err
			}
			c := client.New(f.resolve(e, conf))
			id, err := c.RegisterProfile(e.ctx, req)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
			defer cancel()
			out, err := c.WaitCommand(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Profile registered: %s\n", out.Body)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Username, "username", "", "username (3–254 characters)")
	cmd.Flags().StringVar(&req.GivenName, "given-name", "", "given name")
	cmd.Flags().StringVar(&req.FamilyName, "family-name", "", "family name")
	pw.add(cmd)
	return cmd
}

func newLoginCmd(e *env, f *clientFlags) *cobra.Command {
	var username string
	var pwf passwordFlags
	var printToken bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Authenticate and save the token in your config dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if username == "" {
				return errors.New("--username is required")
			}
			pw, err := pwf.get(e)
			if err != nil {
				return err
			}
			conf, err := loadConfig(e)
			if err != nil {
				return err
			}
			server := f.resolve(e, conf)
			tok, err := client.New(server).Authenticate(e.ctx, username, pw)
			if err != nil {
				return err
			}
			conf.Server, conf.Username, conf.Token, conf.ExpiresAt = server, username, tok.Value, tok.ExpiresAt
			if err := saveConfig(e, conf); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Logged in as %s (token expires %s)\n", username, tok.ExpiresAt.Local().Format(time.RFC1123))
			if printToken {
				fmt.Fprintln(e.stdout, tok.Value)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&username, "username", "", "username")
	pwf.add(cmd)
	cmd.Flags().BoolVar(&printToken, "print-token", false, "also print the token (keep it secret)")
	return cmd
}

func newWhoamiCmd(e *env, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the logged-in profile",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, conf, err := f.loggedIn(e)
			if err != nil {
				return err
			}
			id, err := c.ProfileID(e.ctx)
			if err != nil {
				return err
			}
			exp, err := c.TokenExpiry(e.ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "username:   %s\nprofile id: %s\nserver:     %s\ntoken expires %s\n",
				conf.Username, id, f.resolve(e, conf), exp.Local().Format(time.RFC1123))
			return nil
		},
	}
}

func newPasswdCmd(e *env, f *clientFlags) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Change your password (current, then new, on standard input)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !fromStdin {
				return errors.New("give the current and the new password on standard input with --passwords-stdin")
			}
			lines, err := readLines(e, 2)
			if err != nil {
				return err
			}
			return f.submit(e, ack{say: "Password changed.", within: time.Minute}, func(ctx context.Context, s *client.Session) (string, error) {
				return s.ChangePassword(ctx, lines[0], lines[1])
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "passwords-stdin", false, "read the current and the new password from standard input, one per line")
	return cmd
}

func newLogoutCmd(e *env, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, conf, err := f.loggedIn(e)
			if err != nil {
				return err
			}
			var apiErr *client.Error
			if err := c.Revoke(e.ctx); err != nil && !(errors.As(err, &apiErr) && apiErr.Status == 401) {
				return err
			}
			conf.Token, conf.ExpiresAt = "", time.Time{}
			if err := saveConfig(e, conf); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "Logged out.")
			return nil
		},
	}
}

func newKeyGenerateCmd(e *env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate a key pair: the private key file (0600) and the signed public key on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, err := keys.Generate()
			if err != nil {
				return err
			}
			if err := keys.WritePrivateKeyFile(out, priv); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, keys.SignedPublic(priv))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "privicore.key", "private key file to create (never overwritten)")
	return cmd
}

func newKeyRegisterCmd(e *env, f *clientFlags) *cobra.Command {
	var keyFile, public string
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register your public key (from --key FILE or --public HEX) and wait for the ack",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case keyFile != "" && public != "":
				return errors.New("give --key or --public, not both")
			case keyFile != "":
				priv, err := keys.ReadPrivateKeyFile(keyFile)
				if err != nil {
					return err
				}
				public = keys.SignedPublic(priv)
			case public == "":
				return errors.New("give --key FILE or --public HEX")
			}
			return f.submit(e, ack{say: "Public key registered.", within: time.Minute}, func(ctx context.Context, s *client.Session) (string, error) {
				return s.RegisterPublicKey(ctx, public)
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (from `privicore key generate`)")
	cmd.Flags().StringVar(&public, "public", "", "signed public key (200 hex)")
	return cmd
}
