package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/internal/keyring"
)

// newKEKCmd is `privicore kek`: the key-encryption key serve's --kek-file
// names.
func newKEKCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kek",
		Short: "Manage the key-encryption key that seals the engine's keys in the database",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate FILE",
		Short: "Write a new key-encryption key (32 random bytes, base64) to FILE, mode 0600; an existing FILE is never overwritten",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := keyring.GenerateKEKFile(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "privicore: wrote a new KEK to %s; give every engine on the database --kek-file %s, and keep a copy safe: without it the stored data cannot be read\n", args[0], args[0])
			return nil
		},
	})
	return cmd
}
