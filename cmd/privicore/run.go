package main

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore"
	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/keys"
)

// How the client commands run (with a client or a session of the
// logged-in profile, submitting a command and waiting for its ack) and
// how they print (tables, JSON), written once for all of them.

// sessionTime is how long a command waits in a session unless it says otherwise.
const sessionTime = 5 * time.Minute

// withClient runs fn with a client of the logged-in profile.
func (f *clientFlags) withClient(e *env, fn func(context.Context, *client.Client) error) error {
	c, _, err := f.loggedIn(e)
	if err != nil {
		return err
	}
	return fn(e.ctx, c)
}

// session opens a Session for the logged-in profile.
func (f *clientFlags) session(e *env) (*client.Session, error) {
	c, _, err := f.loggedIn(e)
	if err != nil {
		return nil, err
	}
	return client.NewSession(e.ctx, c)
}

// withSession runs fn with a Session of the logged-in profile, for sessionTime at the most.
func (f *clientFlags) withSession(e *env, fn func(context.Context, *client.Session) error) error {
	return f.withSessionFor(e, sessionTime, fn)
}

// withSessionFor runs fn with a Session of the logged-in profile, for d at the most.
func (f *clientFlags) withSessionFor(e *env, d time.Duration, fn func(context.Context, *client.Session) error) error {
	s, err := f.session(e)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(e.ctx, d)
	defer cancel()
	return fn(ctx, s)
}

// ack says how a command submitted with submit is waited for and reported.
type ack struct {
	say    string        // printed once acknowledged; "" prints the answer's body
	votes  bool          // tell on stderr of the votes the command waits for (watchVotes)
	within time.Duration // how long to wait; 0 is sessionTime
}

// submit submits one command in a session of the logged-in profile, waits
// for its ack and reports it as a says.
func (f *clientFlags) submit(e *env, a ack, submit func(context.Context, *client.Session) (string, error)) error {
	within := a.within
	if within == 0 {
		within = sessionTime
	}
	return f.withSessionFor(e, within, func(ctx context.Context, s *client.Session) error {
		var opts []client.WaitOption
		var w *voteWatch
		if a.votes {
			w = watchVotes(e)
			opts = append(opts, w.option())
		}
		out, err := s.Do(ctx, func() (string, error) { return submit(ctx, s) }, opts...)
		if w != nil {
			err = w.explain(err)
		}
		if err != nil {
			return err
		}
		if a.say == "" {
			fmt.Fprintln(e.stdout, out.Body)
		} else {
			fmt.Fprintln(e.stdout, a.say)
		}
		return nil
	})
}

// await submits a command in a session, waits for its ack and prints the body.
func (f *clientFlags) await(e *env, submit func(context.Context, *client.Session) (string, error)) error {
	return f.submit(e, ack{}, submit)
}

// newTable returns a writer of aligned columns on stdout, its header
// written; the caller writes the tab-separated rows and flushes it.
func newTable(e *env, header string) *tabwriter.Writer {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	return w
}

// printIndented writes v as indented JSON.
func printIndented(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

// deviceFiles are the files a device daemon starts from: its configuration
// bundle and its private key.
type deviceFiles struct {
	bundle, key string
}

// add adds --config and --key.
func (d *deviceFiles) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.bundle, "config", "bundle.json", "configuration bundle")
	cmd.Flags().StringVar(&d.key, "key", "device.key", "the device's private key file (0600)")
}

// read reads the bundle and the private key.
func (d *deviceFiles) read() (*privicore.Bundle, *ecdh.PrivateKey, error) {
	b, err := storagedevice.ReadBundle(d.bundle)
	if err != nil {
		return nil, nil, err
	}
	priv, err := keys.ReadPrivateKeyFile(d.key)
	if err != nil {
		return nil, nil, err
	}
	return b, priv, nil
}
