package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/privicore/privicore/internal/keys"
)

// newCalloutKeyCmd is `privicore callout-key`: the account key with which
// the engines sign the grants they hand out as an external NATS server's
// auth callout (serve's --nats-callout-key).
func newCalloutKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "callout-key",
		Short: "Manage the key the engines sign device grants with as an external NATS server's auth callout",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate FILE",
		Short: "Write a new account seed (SA…) to FILE, mode 0600, and print its public key for the NATS servers' auth_callout.issuer; an existing FILE is never overwritten",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			kp, err := nkeys.CreateAccount()
			if err != nil {
				return err
			}
			seed, _ := kp.Seed()
			pub, _ := kp.PublicKey()
			err = keys.WriteSecretFile(args[0], append(seed, '\n'))
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists already; a callout key file is never overwritten (the NATS servers trust its public key): choose another path", args[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, pub)
			fmt.Fprintf(e.stderr, "privicore: wrote a new callout key to %s; give every engine --nats-callout-key %s and set the public key above as auth_callout.issuer in every NATS server's configuration\n", args[0], args[0])
			return nil
		},
	})
	return cmd
}
