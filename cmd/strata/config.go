package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/strata-paas/strata/api"
)

// Config is the saved CLI target.
type Config struct {
	API   string `json:"api"`
	Token string `json:"token"`
	// Org and Space are the target of app commands (strata target); empty
	// is the default org and space.
	Org   string `json:"org,omitempty"`
	Space string `json:"space,omitempty"`
}

// configPath returns $XDG_CONFIG_HOME/strata/config.json, or
// $HOME/.config/strata/config.json.
func configPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", api.Errorf(api.EInvalid, "cannot find the config directory — set HOME or XDG_CONFIG_HOME")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "strata", "config.json"), nil
}

// config returns the path of the config file and what it holds.
func (m *Main) config() (string, Config, error) {
	path, err := configPath(m.Getenv)
	if err != nil {
		return "", Config{}, err
	}
	cfg, err := loadConfig(path)
	return path, cfg, err
}

// loadConfig reads the config at path; a missing file is an empty config.
func loadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, api.Errorf(api.EInvalid, "cannot read %s: %v — fix its permissions or run strata login again", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, api.Errorf(api.EInvalid, "%s is not valid JSON: %v — run strata login again", path, err)
	}
	return c, nil
}

// saveConfig writes c to path atomically with mode 0600 (the file holds a
// token), creating the directory with mode 0700.
func saveConfig(path string, c Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return api.Errorf(api.EInvalid, "cannot create %s: %v — check its permissions", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return api.Errorf(api.EInvalid, "cannot write in %s: %v — check its permissions", filepath.Dir(path), err)
	}
	defer os.Remove(tmp.Name())
	err = writeAndClose(tmp, append(b, '\n'))
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return api.Errorf(api.EInvalid, "cannot save %s: %v — check its permissions", path, err)
	}
	return nil
}

func writeAndClose(f *os.File, b []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
