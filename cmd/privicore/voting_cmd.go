package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/authenticator"
	"github.com/privicore/privicore/internal/protocol"
)

// addVotingCommands adds `privicore authenticator` (the device daemon, and
// register|list|remove), `voting-config`, `policy` and `vote`.
func addVotingCommands(root *cobra.Command, e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) {
	auth := newAuthenticatorCmd(e)
	for _, use := range []string{"register", "remove"} {
		auth.AddCommand(withServer(&cobra.Command{Use: use + " DEVICE-ID", Short: map[string]string{
			"register": "Give an approved device the authenticator role", "remove": "Drop a device's authenticator role"}[use],
			Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
				return f.await(e, func(ctx context.Context, s *client.Session) (string, error) {
					if use == "register" {
						return s.RegisterAuthenticator(ctx, args[0])
					}
					return s.RemoveAuthenticator(ctx, args[0])
				})
			}}))
	}
	auth.AddCommand(withServer(newListDevicesCmd(e, f, "List your authenticators", (*client.Client).Authenticators, false)))
	root.AddCommand(auth, newVotingConfigCmd(e, f, withServer), newPolicyCmd(e, f, withServer), newVoteCmd(e, f, withServer))
}

// newAuthenticatorCmd runs the authenticator device.
func newAuthenticatorCmd(e *env) *cobra.Command {
	var files deviceFiles
	var approveAll, denyAll bool
	cmd := &cobra.Command{Use: "authenticator", Short: "Run an authenticator device (answers ballots), or manage authenticators",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if approveAll && denyAll {
				return errors.New("give --approve-all or --deny-all, not both")
			}
			b, priv, err := files.read()
			if err != nil {
				return err
			}
			in := bufio.NewReader(e.stdin)
			decide := func(ctx context.Context, bl protocol.Ballot) authenticator.Decision {
				showBallot(e, bl)
				switch {
				case approveAll:
					fmt.Fprintln(e.stdout, "  → yes (--approve-all)")
					return authenticator.Yes
				case denyAll:
					fmt.Fprintln(e.stdout, "  → no (--deny-all)")
					return authenticator.No
				}
				fmt.Fprint(e.stdout, "  Approve? [y/N] ")
				answer := make(chan string, 1)
				go func() {
					line, _ := in.ReadString('\n')
					answer <- strings.ToLower(strings.TrimSpace(line))
				}()
				select {
				case a := <-answer:
					if a == "y" || a == "yes" {
						return authenticator.Yes
					}
					return authenticator.No
				case <-ctx.Done():
					fmt.Fprintln(e.stdout, "\n  (the ballot expired)")
					return authenticator.Silent
				}
			}
			a, err := authenticator.Start(authenticator.Config{Bundle: b, Key: priv, Decide: decide, Logger: newLogger(e, "info"),
				Answered: func(bl protocol.Ballot, vote string, r protocol.Receipt) {
					if r.Accepted {
						fmt.Fprintf(e.stdout, "  answered %s: accepted\n", vote)
					} else {
						fmt.Fprintf(e.stdout, "  answered %s: refused (%s)\n", vote, r.Reason)
					}
				}})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "privicore: authenticator %s waiting for ballots\n", b.DeviceIdentifier)
			<-e.ctx.Done()
			a.Close()
			return nil
		}}
	files.add(cmd)
	cmd.Flags().BoolVar(&approveAll, "approve-all", false, "answer yes to every ballot (automation, tests)")
	cmd.Flags().BoolVar(&denyAll, "deny-all", false, "answer no to every ballot")
	return cmd
}

// showBallot prints what a ballot asks.
func showBallot(e *env, b protocol.Ballot) {
	fmt.Fprintf(e.stdout, "\nBallot %s (attempt %d): %s\n", b.PoolID, b.Attempt, b.Event)
	if b.Title != "" {
		fmt.Fprintf(e.stdout, "  %s\n", b.Title)
	}
	if b.Question != "" {
		fmt.Fprintf(e.stdout, "  %s\n", b.Question)
	}
	keys := make([]string, 0, len(b.Detail))
	for k := range b.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "  %s: %v\n", k, b.Detail[k])
	}
	fmt.Fprintf(e.stdout, "  expires %s (in %s)\n", b.ExpiresAt.Format(time.RFC3339), time.Until(b.ExpiresAt).Round(time.Second))
}

func newVotingConfigCmd(e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: "voting-config", Short: "Voting configurations and the profile's voting strategy"}
	var v client.VotingConfiguration
	var timeLimit time.Duration
	flags := func(c *cobra.Command) {
		c.Flags().StringVar(&v.Name, "name", "", "name (unique per profile)")
		c.Flags().StringVar(&v.Strategy, "strategy", "", "unanimous, consensus, affirmative or minimum_percentage")
		c.Flags().IntVar(&v.PercentageRequired, "percentage", 0, "yes percentage for minimum_percentage")
		c.Flags().DurationVar(&timeLimit, "time-limit", 0, "how long a vote stays open (5s … 24h)")
		c.Flags().StringSliceVar(&v.DeviceIdentifiers, "device", nil, "authenticators that vote (repeat; none: all)")
	}
	register := &cobra.Command{Use: "register", Short: "Register a voting configuration (prints its id)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v.TimeLimit = int(timeLimit.Seconds())
			return f.await(e, func(ctx context.Context, s *client.Session) (string, error) {
				return s.RegisterVotingConfiguration(ctx, v)
			})
		}}
	flags(register)
	update := &cobra.Command{Use: "update ID", Short: "Change a voting configuration (only the flags given)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v.ID, v.TimeLimit = args[0], int(timeLimit.Seconds())
			return f.await(e, func(ctx context.Context, s *client.Session) (string, error) {
				return s.UpdateVotingConfiguration(ctx, v)
			})
		}}
	flags(update)
	list := &cobra.Command{Use: "list", Short: "List voting configurations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				list, err := c.VotingConfigurations(ctx)
				if err != nil {
					return err
				}
				w := newTable(e, "ID\tNAME\tSTRATEGY\tPERCENT\tTIME LIMIT\tDEVICES")
				for _, c := range list {
					devs := "all"
					if len(c.DeviceIdentifiers) > 0 {
						devs = strings.Join(c.DeviceIdentifiers, ",")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%ds\t%s\n", c.ID, c.Name, c.Strategy, c.PercentageRequired, c.TimeLimit, devs)
				}
				return w.Flush()
			})
		}}
	var quorum, attempts, percentage int
	var strategy string
	var limit time.Duration
	strategyCmd := &cobra.Command{Use: "strategy", Short: "Show the profile's voting strategy, or change it with flags", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			err := f.withSession(e, func(ctx context.Context, s *client.Session) error {
				steps := []func() (string, error){}
				if fl.Changed("quorum") {
					steps = append(steps, func() (string, error) { return s.SetQuorumSize(ctx, quorum) })
				}
				if fl.Changed("strategy") {
					steps = append(steps, func() (string, error) { return s.SetQuorumStrategy(ctx, strategy, percentage) })
				}
				if fl.Changed("time-limit") {
					steps = append(steps, func() (string, error) { return s.SetVotingTimeLimit(ctx, limit) })
				}
				if fl.Changed("attempts") {
					steps = append(steps, func() (string, error) { return s.SetMaximumVotingAttempts(ctx, attempts) })
				}
				for _, step := range steps {
					if _, err := s.Do(ctx, step); err != nil {
						return err
					}
				}
				st, err := s.VotingStrategy(ctx)
				if err == nil {
					fmt.Fprintf(e.stdout, "strategy %s (%d%%), quorum %d, time limit %ds, attempts %d\n", st.Strategy, st.StrategyParams,
						st.QuorumSize, st.TimeLimit, st.NumberOfAttempts)
				}
				return err
			})
			return err
		}}
	strategyCmd.Flags().IntVar(&quorum, "quorum", 0, "answers needed for a result to count")
	strategyCmd.Flags().StringVar(&strategy, "strategy", "", "unanimous, consensus, affirmative or minimum_percentage")
	strategyCmd.Flags().IntVar(&percentage, "percentage", 0, "yes percentage for minimum_percentage")
	strategyCmd.Flags().DurationVar(&limit, "time-limit", 0, "how long a vote stays open")
	strategyCmd.Flags().IntVar(&attempts, "attempts", 0, "how many times a failed vote is tried (1 … 10)")
	for _, c := range []*cobra.Command{register, update, list, strategyCmd} {
		cmd.AddCommand(withServer(c))
	}
	return cmd
}

func newPolicyCmd(e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Policies: operations your authenticators vote on"}
	templates := &cobra.Command{Use: "templates", Short: "List the policy templates and their events", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				cat, err := c.PolicyTemplates(ctx)
				if err != nil {
					return err
				}
				printTemplates(e, cat)
				return nil
			})
		}}
	var p client.Policy
	var message string
	var settings map[string]string
	register := &cobra.Command{Use: "register", Short: "Register a policy (inactive; prints its id)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if message != "" || len(settings) > 0 {
				p.Configuration = map[string]any{}
				for k, v := range settings {
					p.Configuration[k] = v
				}
			}
			if message != "" {
				p.Configuration["ballotMessage"] = message
			}
			return f.await(e, func(ctx context.Context, s *client.Session) (string, error) { return s.RegisterPolicy(ctx, p) })
		}}
	register.Flags().StringVar(&p.Name, "name", "", "name (generated when absent)")
	register.Flags().StringVar(&p.PolicyTemplateID, "template", "", "template id (see `policy templates`)")
	register.Flags().StringSliceVar(&p.ApplyingEventIDs, "event", nil, "event ids of the template (repeat or comma-separate)")
	register.Flags().StringVar(&p.ConfigurationID, "voting-config", "", "voting configuration id or name (default: the profile's strategy)")
	register.Flags().StringVar(&message, "message", "", "text the ballots show")
	register.Flags().StringToStringVar(&settings, "set", nil, "further configuration keys stored with the policy, KEY=VALUE (repeat), e.g. --set classification=secret")
	var which string
	list := &cobra.Command{Use: "list", Short: "List policies", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				ps, err := c.Policies(ctx, which)
				if err != nil {
					return err
				}
				w := newTable(e, "ID\tNAME\tTEMPLATE\tEVENTS\tACTIVE")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", p.ID, p.Name, p.PolicyTemplateID, strings.Join(p.Events, ","), p.Active)
				}
				return w.Flush()
			})
		}}
	list.Flags().StringVar(&which, "show", "registered", "registered (all), active or inactive")
	show := &cobra.Command{Use: "show POLICY", Short: "Print a policy (id or name) with its configuration, as JSON", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				p, err := c.Policy(ctx, args[0])
				if err != nil {
					return err
				}
				return printIndented(e, p)
			})
		}}
	cmd.AddCommand(withServer(templates), withServer(register), withServer(list), withServer(show))
	for _, action := range []string{"activate", "deactivate", "delete"} {
		cmd.AddCommand(withServer(&cobra.Command{Use: action + " POLICY", Short: strings.ToUpper(action[:1]) + action[1:] + " a policy (id or name)",
			Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
				return f.await(e, func(ctx context.Context, s *client.Session) (string, error) {
					return s.ChangePolicy(ctx, action, args[0])
				})
			}}))
	}
	return cmd
}

func newVoteCmd(e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: "vote", Short: "Ask your authenticators a question; follow a pool"}
	var config, title, nonce string
	var skip []string
	var wait bool
	create := &cobra.Command{Use: "create QUESTION", Short: "Open a vote (prints the pool id; --wait for the outcome)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withSession(e, func(ctx context.Context, s *client.Session) error {
				v, err := s.CreateVote(ctx, config, title, args[0], nonce, skip)
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, v.PoolID)
				if !wait {
					return nil
				}
				_, err = s.Await(ctx, v.CommandID)
				if err == nil {
					fmt.Fprintln(e.stdout, "approved")
				}
				return err
			})
		}}
	create.Flags().StringVar(&config, "voting-config", "", "voting configuration id or name (default: the profile's strategy)")
	create.Flags().StringVar(&title, "title", "", "a title the ballots show")
	create.Flags().StringVar(&nonce, "nonce", "", "your own reference, echoed in the pool status")
	create.Flags().StringSliceVar(&skip, "skip", nil, "authenticators not to ask")
	create.Flags().BoolVar(&wait, "wait", false, "wait for the outcome (exit status 1 unless approved)")
	status := &cobra.Command{Use: "status POOL-ID", Short: "Show a pool", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				p, err := c.PoolStatus(ctx, args[0])
				if err != nil {
					return err
				}
				printPool(e, p)
				return nil
			})
		}}
	cancel := &cobra.Command{Use: "cancel POOL-ID", Short: "Cancel an open pool", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.await(e, func(ctx context.Context, s *client.Session) (string, error) { return s.CancelPool(ctx, args[0]) })
		}}
	cmd.AddCommand(withServer(create), withServer(status), withServer(cancel))
	return cmd
}

// printTemplates prints the policy templates and their events, sorted.
func printTemplates(e *env, cat map[string]client.PolicyTemplate) {
	ids := make([]string, 0, len(cat))
	for id := range cat {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := cat[id]
		fmt.Fprintf(e.stdout, "%s — %s\n", id, t.Description)
		evs := make([]string, 0, len(t.Events))
		for evID, ev := range t.Events {
			for name := range ev {
				evs = append(evs, fmt.Sprintf("  %-14s %s", evID, name))
			}
		}
		sort.Strings(evs)
		fmt.Fprintln(e.stdout, strings.Join(evs, "\n"))
	}
}

// printPool prints a pool's state and answers.
func printPool(e *env, p client.PoolStatus) {
	fmt.Fprintf(e.stdout, "pool %s: %s (attempt %d of %d, %s, quorum %d)\n", p.PoolID, p.State, p.Attempt, p.MaxAttempts, p.Strategy, p.QuorumSize)
	if p.State == "open" {
		fmt.Fprintf(e.stdout, "  %ds left\n", p.SecondsLeft)
	}
	for _, a := range p.Answers {
		fmt.Fprintf(e.stdout, "  %s: %s\n", a.DeviceIdentifier, a.Vote)
	}
	fmt.Fprintf(e.stdout, "  %d of %d answered\n", len(p.Answers), len(p.Eligible))
}
