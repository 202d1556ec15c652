package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The CLI's saved login: the server and the token, in the user's config
// directory, private to the user.

// defaultServer is where the client commands look for the engine.
const defaultServer = "http://127.0.0.1:8009"

// config is what `privicore login` saves (mode 0600).
type config struct {
	Server    string    `json:"server"`
	Username  string    `json:"username"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// configDir is PRIVICORE_CONFIG_DIR, else $XDG_CONFIG_HOME/privicore, else
// $HOME/.config/privicore.
func configDir(e *env) (string, error) {
	if d := e.getenv("PRIVICORE_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "privicore"), nil
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "privicore"), nil
	}
	return "", errors.New("no config directory: set PRIVICORE_CONFIG_DIR or HOME")
}

func loadConfig(e *env) (*config, error) {
	dir, err := configDir(e)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &config{}, nil
	} else if err != nil {
		return nil, err
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return &c, nil
}

// saveConfig writes the config atomically with mode 0600 (dir 0700).
func saveConfig(e *env, c *config) error {
	dir, err := configDir(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp, err := os.CreateTemp(dir, ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, "config.json"))
}
