package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// newFlagSet returns a flag set for a role whose errors are returned, not fatal.
func newFlagSet(role string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stratad "+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from STRATA_<FLAG> (dashes become underscores), as docs/architecture.md says.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return fmt.Errorf("%w — run \"%s -h\" for the flags", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q — run \"%s -h\" for the flags", fs.Arg(0), fs.Name())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "STRATA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("bad value %q in %s: %v", v, env, e)
			}
		}
	})
	return err
}

// defaultDataDir is $XDG_DATA_HOME/strata or ~/.local/share/strata.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "strata")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".strata-data"
	}
	return filepath.Join(home, ".local", "share", "strata")
}

// parseRole adds the --log-level flag (with the role's default level),
// parses args and returns the role's logger.
func parseRole(fs *flag.FlagSet, args []string, stderr io.Writer, defaultLevel string) (*slog.Logger, error) {
	level := fs.String("log-level", defaultLevel, "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return newLogger(stderr, *level)
}

// newLogger returns the daemon's structured logger at the given level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q — use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// parseLabels parses "k=v,k2=v2".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad label %q — use key=value,key2=value2", kv)
		}
		out[k] = v
	}
	return out, nil
}

// readToken returns the API token given directly or in file (which wins).
func readToken(token, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return "", fmt.Errorf("no API token for --controller — pass --token-file <controller data>/admin.token or set STRATA_TOKEN")
	}
	return token, nil
}
