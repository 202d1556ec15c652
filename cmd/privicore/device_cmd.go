package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/keys"
	"github.com/spf13/cobra"
)

// privicore device …: enrolling, listing and configuring devices.

func newDeviceActionCmd(e *env, f *clientFlags, use, short string) *cobra.Command {
	return &cobra.Command{Use: use + " DEVICE-ID", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.submit(e, ack{votes: true}, func(ctx context.Context, s *client.Session) (string, error) {
				submit := map[string]func(context.Context, string) (string, error){
					"device approve": s.ApproveDevice, "device reject": s.RejectDevice, "device remove": s.RemoveDevice,
					"storage register": s.RegisterStorage, "storage remove": s.RemoveStorage, "storage sync": s.SyncStorage,
				}[cmd.Parent().Name()+" "+use]
				return submit(ctx, args[0])
			})
		}}
}

func printDevices(e *env, ds []client.Device, storage bool) error {
	header := "DEVICE\tNAME\tROLE\tSTATE\tONLINE"
	if storage {
		header += "\tBLOBS\tBYTES"
	}
	w := newTable(e, header)
	for _, d := range ds {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%v", d.DeviceIdentifier, d.Name, d.Role, d.State, d.Online)
		if storage {
			line += fmt.Sprintf("\t%d\t%d", d.BlobCount, d.Bytes)
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}

func newDeviceListCmd(e *env, f *clientFlags) *cobra.Command {
	return newListDevicesCmd(e, f, "List your devices", (*client.Client).Devices, false)
}

// newListDevicesCmd is a `list` command printing the devices fetch returns
// (storage: with blob counts).
func newListDevicesCmd(e *env, f *clientFlags, short string, fetch func(*client.Client, context.Context) ([]client.Device, error), storage bool) *cobra.Command {
	return &cobra.Command{Use: "list", Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				ds, err := fetch(c, ctx)
				if err != nil {
					return err
				}
				return printDevices(e, ds, storage)
			})
		}}
}

// writeBundle saves a bundle with mode 0600.
func writeBundle(path string, b *client.Bundle) error {
	raw, _ := json.MarshalIndent(b, "", "  ")
	return os.WriteFile(path, append(raw, '\n'), 0o600)
}

func newDeviceConfigCmd(e *env, f *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{Use: "config DEVICE-ID", Short: "Issue a device's configuration bundle (a new secret each time)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				b, err := c.DeviceConfiguration(ctx, args[0])
				if err != nil {
					return err
				}
				if err := writeBundle(out, b); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Bundle written to %s\n", out)
				return nil
			})
		}}
	cmd.Flags().StringVarP(&out, "output", "o", "bundle.json", "bundle file to write (0600)")
	return cmd
}

// newEnrollCmd is the device side of enrollment.
func newEnrollCmd(e *env, f *clientFlags) *cobra.Command {
	var role, name, keyOut, bundleOut, qr string
	var approve bool
	cmd := &cobra.Command{Use: "enroll", Short: "Enroll this machine as a device: key file, identifier, key registration (and with --approve: approval, role, bundle)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role != "storage" && role != "authenticator" {
				return errors.New("--role must be storage or authenticator")
			}
			var c *client.Client
			if qr != "" {
				conf, err := loadConfig(e)
				if err != nil {
					return err
				}
				c = client.New(f.resolve(e, conf), client.WithToken(qr))
			} else {
				var err error
				if c, _, err = f.loggedIn(e); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
			defer cancel()
			priv, err := keys.Generate()
			if err != nil {
				return err
			}
			if err := keys.WritePrivateKeyFile(keyOut, priv); err != nil {
				return err
			}
			req, err := c.RequestDeviceIdentifier(ctx, name)
			if err != nil {
				return err
			}
			var id string
			for id == "" {
				id, err = c.RetrieveDeviceIdentifier(ctx, req)
				var apiErr *client.Error
				if err != nil && !(errors.As(err, &apiErr) && apiErr.Status == 404) {
					return err
				}
				if id == "" {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
			keyCmd, err := c.RegisterDeviceKey(ctx, id, keys.SignedPublic(priv))
			if err != nil {
				return err
			}
			if _, err := c.WaitCommand(ctx, keyCmd); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Device %s enrolled; key in %s\n", id, keyOut)
			if !approve {
				if qr == "" {
					fmt.Fprintf(e.stdout, "Approve it with: privicore device approve %s\n", id)
				}
				return nil
			}
			if qr != "" {
				return errors.New("--approve needs the owner's login, not a QR token")
			}
			for _, step := range []func(context.Context, string) (string, error){c.ApproveDevice, roleStep(c, role)} {
				cid, err := step(ctx, id)
				if err != nil {
					return err
				}
				if _, err := c.WaitCommand(ctx, cid); err != nil {
					return err
				}
			}
			b, err := c.DeviceConfiguration(ctx, id)
			if err != nil {
				return err
			}
			if err := writeBundle(bundleOut, b); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Approved as %s; bundle in %s\n", role, bundleOut)
			return nil
		}}
	cmd.Flags().StringVar(&role, "role", "", "storage or authenticator")
	cmd.Flags().StringVar(&name, "name", "", "device name")
	cmd.Flags().StringVar(&keyOut, "key-out", "device.key", "private key file to create (0600)")
	cmd.Flags().StringVar(&bundleOut, "bundle-out", "bundle.json", "bundle file to write with --approve (0600)")
	cmd.Flags().StringVar(&qr, "qr-token", "", "enroll with a QR token instead of your login")
	cmd.Flags().BoolVar(&approve, "approve", false, "approve it, give it the role and write its bundle (owner's login)")
	return cmd
}

func roleStep(c *client.Client, role string) func(context.Context, string) (string, error) {
	if role == "storage" {
		return c.RegisterStorage
	}
	return c.RegisterAuthenticator
}
