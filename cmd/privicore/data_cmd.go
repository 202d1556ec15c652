package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/keys"
)

// addDataCommands adds the device, storage and data token commands.
func addDataCommands(root *cobra.Command, e *env, f *clientFlags, withServer func(*cobra.Command) *cobra.Command) {
	dev := &cobra.Command{Use: "device", Short: "Enroll and manage devices"}
	dev.AddCommand(withServer(newEnrollCmd(e, f)), withServer(newDeviceListCmd(e, f)), withServer(newDeviceConfigCmd(e, f)))
	for _, c := range []struct{ use, short string }{{"approve", "Approve a device"}, {"reject", "Reject a pending device"}, {"remove", "Remove a device"}} {
		dev.AddCommand(withServer(newDeviceActionCmd(e, f, c.use, c.short)))
	}
	dev.AddCommand(withServer(&cobra.Command{Use: "request NAME", Short: "Request a new device identifier", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.await(e, func(ctx context.Context, s *client.Session) (string, error) {
				return s.RequestDeviceIdentifier(ctx, args[0])
			})
		}}))
	st := &cobra.Command{Use: "storage", Short: "Manage storage devices"}
	for _, c := range []struct{ use, short string }{{"register", "Give a device the storage role"}, {"remove", "Drop the storage role"}, {"sync", "Copy to a device what it lacks"}} {
		st.AddCommand(withServer(newDeviceActionCmd(e, f, c.use, c.short)))
	}
	st.AddCommand(withServer(newListDevicesCmd(e, f, "List storage devices", (*client.Client).StorageDevices, true)))
	tokens := &cobra.Command{Use: "tokens", Short: "List and manage data tokens"}
	tokens.AddCommand(withServer(newTokensListCmd(e, f)), withServer(newTokensUpdateCmd(e, f, "update", "Update a token's file meta (key=value: fileName, extension, context, path)")),
		withServer(newTokensUpdateCmd(e, f, "classify", "Set the information-security risk meta (key=value: classification, label, handling, …)")),
		withServer(&cobra.Command{Use: "delete TOKEN", Short: "Delete a token and its data on every device", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return f.submit(e, ack{say: "Deleted.", votes: true}, func(ctx context.Context, s *client.Session) (string, error) {
					return s.DeleteDataToken(ctx, args[0])
				})
			}}))
	root.AddCommand(dev, st, tokens, withServer(newPutCmd(e, f)), withServer(newGetCmd(e, f)), newStorageDeviceCmd(e))
}

// dataKey is the CLI's layer-1 key, created on first use in the config dir.
func dataKey(e *env) ([]byte, error) {
	dir, err := configDir(e)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return keys.LoadOrCreateSecretFile(filepath.Join(dir, "data.key"), 32)
}

func newPutCmd(e *env, f *clientFlags) *cobra.Command {
	var contextName string
	cmd := &cobra.Command{Use: "put FILE", Short: "Encrypt a file locally and store it; prints its dtk-… token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := dataKey(e)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			base := filepath.Base(args[0])
			ext := strings.TrimPrefix(filepath.Ext(base), ".")
			var opts []client.StoreOption
			if len(data) > client.MaxInline {
				bar := progressbar.NewOptions64(int64(len(data))+28, progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionShowBytes(true), progressbar.OptionSetDescription("uploading"), progressbar.OptionClearOnFinish())
				opts = append(opts, client.WithProgress(func(sent, _ int64) { bar.Set64(sent) }))
				defer bar.Finish()
			}
			return f.withSession(e, func(ctx context.Context, s *client.Session) error {
				dtk, err := s.Store(ctx, key, data, client.FileMeta{FileName: strings.TrimSuffix(base, "."+ext), Extension: ext, Context: contextName, Path: args[0]}, opts...)
				if err == nil {
					fmt.Fprintln(e.stdout, dtk)
				}
				return err
			})
		}}
	cmd.Flags().StringVar(&contextName, "context", "files", "the token's context")
	return cmd
}

func newGetCmd(e *env, f *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{Use: "get TOKEN", Short: "Fetch a token's data and decrypt it locally", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := dataKey(e)
			if err != nil {
				return err
			}
			return f.withSession(e, func(ctx context.Context, s *client.Session) error {
				w := watchVotes(e)
				data, err := s.Retrieve(ctx, key, args[0], w.option())
				if err != nil {
					return w.explain(err)
				}
				if out == "" || out == "-" {
					_, err = e.stdout.Write(data)
					return err
				}
				return os.WriteFile(out, data, 0o600)
			})
		}}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return cmd
}

// voteWatch tells, on stderr, that a command waits for a vote of the
// profile's authenticators (a policy holds it), and how the vote ended;
// it remembers an open vote so that a wait cut short by the CLI's own
// time limit says which vote it left running.
type voteWatch struct {
	e    *env
	open *client.PoolEvent // set and read by one waiting call at a time
}

// watchVotes returns a voteWatch for one waiting call.
func watchVotes(e *env) *voteWatch { return &voteWatch{e: e} }

// option is the WaitOption of the waiting call.
func (w *voteWatch) option() client.WaitOption { return client.OnVote(w.seen) }

// seen takes one pool event of the awaited command.
func (w *voteWatch) seen(ev client.PoolEvent) {
	if ev.Type == client.EventPoolOpened {
		w.open = &ev
	} else {
		w.open = nil
	}
	printVote(w.e, ev)
}

// explain names the open vote in err when the wait ran out of time.
func (w *voteWatch) explain(err error) error {
	if w.open != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("gave up waiting for the vote on pool %s (open until %s; privicore vote status %s): %w",
			w.open.PoolID, w.open.ExpiresAt.Local().Format(time.RFC3339), w.open.PoolID, err)
	}
	return err
}

func printVote(e *env, ev client.PoolEvent) {
	switch ev.Type {
	case client.EventPoolOpened:
		attempt := ""
		if ev.Attempt > 1 {
			attempt = fmt.Sprintf(" (attempt %d)", ev.Attempt)
		}
		fmt.Fprintf(e.stderr, "waiting for a vote: pool %s%s, until %s\n", ev.PoolID, attempt, ev.ExpiresAt.Local().Format(time.RFC3339))
	case client.EventPoolResolved:
		fmt.Fprintf(e.stderr, "the vote on pool %s ended: %s\n", ev.PoolID, ev.State)
	}
}

func newTokensListCmd(e *env, f *clientFlags) *cobra.Command {
	var page, perPage int
	var filters []string
	cmd := &cobra.Command{Use: "list", Short: "List data tokens", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withClient(e, func(ctx context.Context, c *client.Client) error {
				fm, err := keyValues(filters)
				if err != nil {
					return err
				}
				p, err := c.ListDataTokens(ctx, page, perPage, fm)
				if err != nil {
					return err
				}
				w := newTable(e, "TOKEN\tCONTEXT\tFILE\tCREATED")
				for _, it := range p.Items {
					file, _ := it.Meta["file"].(map[string]any)
					fmt.Fprintf(w, "%s\t%s\t%v.%v\t%s\n", it.Token, it.Context, file["fileName"], file["extension"], it.CreatedAt.Format(time.RFC3339))
				}
				w.Flush()
				fmt.Fprintf(e.stdout, "page %d, %d of %d\n", p.Meta.Page, p.Meta.Count, p.Meta.Total)
				return nil
			})
		}}
	cmd.Flags().IntVar(&page, "page", 1, "page")
	cmd.Flags().IntVar(&perPage, "per-page", 25, "tokens per page (1–100)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter key=value (context, token, meta.file.fileName, meta.file.extension, meta.data.type)")
	return cmd
}

func keyValues(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

func newTokensUpdateCmd(e *env, f *clientFlags, use, short string) *cobra.Command {
	return &cobra.Command{Use: use + " TOKEN key=value…", Short: short, Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fields, err := keyValues(args[1:])
			if err != nil {
				return err
			}
			return f.submit(e, ack{say: "Updated.", votes: true}, func(ctx context.Context, s *client.Session) (string, error) {
				if use == "classify" {
					return s.ClassifyDataToken(ctx, args[0], fields)
				}
				return s.UpdateDataToken(ctx, args[0], fields)
			})
		}}
}

// newStorageDeviceCmd runs the storage device daemon.
func newStorageDeviceCmd(e *env) *cobra.Command {
	var files deviceFiles
	var dir, pprofAddr string
	cmd := &cobra.Command{Use: "storage-device", Short: "Run a storage device (holds the profile's blobs under --dir)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := startPprof(e, pprofAddr); err != nil {
				return err
			}
			b, priv, err := files.read()
			if err != nil {
				return err
			}
			d, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: dir, Logger: newLogger(e, "info")})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "privicore: storage device %s serving from %s\n", b.DeviceIdentifier, dir)
			<-e.ctx.Done()
			d.Close()
			return nil
		}}
	files.add(cmd)
	cmd.Flags().StringVar(&dir, "dir", "storage", "directory for the blobs and the at-rest key")
	cmd.Flags().StringVar(&pprofAddr, "pprof-addr", "", "serve the Go profiler here (e.g. 127.0.0.1:6061); off by default")
	return cmd
}
