package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/daemon/storagedevice"
	"github.com/privicore/privicore/internal/engine"
	"github.com/privicore/privicore/internal/keys"
)

// devState is what `privicore dev` keeps between runs (0600 in its data dir).
type devState struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Devices  []string `json:"devices"`
}

// newDevCmd runs everything on one machine for trying privicore out.
func newDevCmd(e *env) *cobra.Command {
	var cfg engine.Config
	var pprofAddr string
	var devices int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an engine with a demo profile and three storage devices, and print how to use them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = newLogger(e, "warn")
			eng, err := startEngine(e, cfg, pprofAddr)
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { done <- eng.Serve(e.ctx) }()
			base := "http://" + eng.Addr()
			st, err := provisionDev(e.ctx, base, cfg.DataDir, devices)
			if err != nil {
				eng.Close()
				return err
			}
			var running []*storagedevice.Device
			defer func() {
				for _, d := range running {
					d.Close()
				}
			}()
			c := client.New(base)
			if _, err := c.Authenticate(e.ctx, st.Username, st.Password); err != nil {
				return err
			}
			for i, id := range st.Devices {
				b, err := c.DeviceConfiguration(e.ctx, id)
				if err != nil {
					return err
				}
				dir := filepath.Join(cfg.DataDir, fmt.Sprintf("device-%d", i+1))
				priv, err := keys.ReadPrivateKeyFile(filepath.Join(dir, "device.key"))
				if err != nil {
					return err
				}
				d, err := storagedevice.Start(storagedevice.Config{Bundle: b, Key: priv, Dir: dir})
				if err != nil {
					return err
				}
				running = append(running, d)
			}
			fmt.Fprintf(e.stdout, `privicore dev is running.

  engine        %[1]s  (WebSocket ws://%[2]s/ws, bus %[3]s)
  data          %[4]s
  demo profile  %[5]s / %[6]s
  devices       %[7]d storage devices, in-process

Try it (another terminal):

  echo '%[6]s' | privicore login --server %[1]s --username %[5]s --password-stdin
  echo 'hello' > hello.txt
  privicore put hello.txt                # prints a dtk-… token
  privicore get dtk-… -o copy.txt
  privicore storage list

Or with curl:

  TOKEN=$(curl -s -X POST %[1]s/profile/authenticate -H 'Content-Type: application/json' \
    -d '{"username":"%[5]s","password":"%[6]s"}' | sed 's/.*"authorizationToken":"\([^"]*\)".*/\1/')
  curl -s -X POST %[1]s/data-token/reserve-token-space -H "X-DPT-AUTHORIZATION: $TOKEN" -d context=demo
  curl -s %[1]s/storage/list-storage-devices -H "X-DPT-AUTHORIZATION: $TOKEN"

Ctrl-C stops everything; the next run reuses the same data.
`, base, eng.Addr(), eng.Bus.URL(), cfg.DataDir, st.Username, st.Password, len(running))
			return <-done
		},
	}
	f := cmd.Flags()
	f.StringVar(&pprofAddr, "pprof-addr", "", "serve the Go profiler here (e.g. 127.0.0.1:6060); off by default")
	f.StringVar(&cfg.Addr, "addr", engine.DefaultAddr, "API listen address")
	f.StringVar(&cfg.WSAddr, "ws-addr", engine.DefaultWSAddr, `WebSocket proxy listen address ("-" for none)`)
	f.StringVar(&cfg.BusAddr, "bus-addr", engine.DefaultBusAddr, "device bus listen address")
	f.StringVar(&cfg.DataDir, "data-dir", "./privicore-dev-data", "where the engine and the demo devices keep their data")
	f.IntVar(&devices, "devices", 3, "storage devices to run")
	return cmd
}

// provisionDev creates (on the first run) the demo profile, its key and the
// storage devices, and returns what it saved.
func provisionDev(ctx context.Context, base, dataDir string, devices int) (*devState, error) {
	path := filepath.Join(dataDir, "dev.json")
	if raw, err := os.ReadFile(path); err == nil {
		var st devState
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &st, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var pw [18]byte
	rand.Read(pw[:])
	st := &devState{Username: "demo", Password: "Demo-" + base64.RawURLEncoding.EncodeToString(pw[:])}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := client.New(base)
	id, err := c.RegisterProfile(ctx, client.RegisterProfileRequest{Username: st.Username, Password: st.Password})
	if err != nil {
		return nil, err
	}
	if _, err := c.WaitCommand(ctx, id); err != nil {
		return nil, err
	}
	s, err := client.Login(ctx, base, st.Username, st.Password)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_, pub, err := client.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	if _, err := s.Do(ctx, func() (string, error) { return s.RegisterPublicKey(ctx, pub) }); err != nil {
		return nil, err
	}
	for i := range devices {
		dir := filepath.Join(dataDir, fmt.Sprintf("device-%d", i+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		priv, err := keys.Generate()
		if err != nil {
			return nil, err
		}
		if err := keys.WritePrivateKeyFile(filepath.Join(dir, "device.key"), priv); err != nil {
			return nil, err
		}
		out, err := s.Do(ctx, func() (string, error) { return s.RequestDeviceIdentifier(ctx, fmt.Sprintf("demo-storage-%d", i+1)) })
		if err != nil {
			return nil, err
		}
		id := out.Body
		for _, step := range []func() (string, error){
			func() (string, error) { return s.RegisterDeviceKey(ctx, id, keys.SignedPublic(priv)) },
			func() (string, error) { return s.ApproveDevice(ctx, id) },
			func() (string, error) { return s.RegisterStorage(ctx, id) },
		} {
			if _, err := s.Do(ctx, step); err != nil {
				return nil, err
			}
		}
		st.Devices = append(st.Devices, id)
	}
	raw, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	return st, nil
}
