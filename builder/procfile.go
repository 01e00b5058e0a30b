package builder

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxProcfileSize bounds the Procfile read from an app.
const MaxProcfileSize = 64 << 10

// ParseProcfile parses a Procfile: one "type: command" per line, blank lines
// and "#" comments ignored. Types are 1–63 characters of a–z, 0–9, '_' and
// '-'; commands are non-empty and free of control characters. A malformed
// Procfile is an *AppError naming the line.
func ParseProcfile(data []byte) (map[string]string, error) {
	if len(data) > MaxProcfileSize {
		return nil, appErrorf("Procfile is larger than %d bytes — keep it to one line per process type", MaxProcfileSize)
	}
	procs := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(trimmed, ":")
		if !ok {
			return nil, appErrorf("Procfile line %d has no ':' — write it as \"web: ./my-server\"", n)
		}
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		if !validProcessType(name) {
			return nil, appErrorf("Procfile line %d: process type %q may only contain a-z, 0-9, '_' and '-' (at most 63)", n, truncate(name, 40))
		}
		if err := validCommand(name, cmd); err != nil {
			return nil, appErrorf("Procfile line %d: %s", n, err.(*AppError).Message)
		}
		if _, dup := procs[name]; dup {
			return nil, appErrorf("Procfile line %d: process type %q is defined twice", n, name)
		}
		procs[name] = cmd
	}
	return procs, nil
}

func validProcessType(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validCommand checks the start command of process type name: not empty,
// no control characters. The error is an *AppError.
func validCommand(name, cmd string) error {
	if cmd == "" {
		return appErrorf("process type %q has no command", name)
	}
	for _, r := range cmd {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return appErrorf("command of %q contains a control character", name)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ReadProcfile parses the Procfile at the root of dir; no Procfile gives nil
// and no error. A Procfile that is not a regular file is an *AppError.
func ReadProcfile(dir string) (map[string]string, error) {
	data, err := readAppFile(dir, "Procfile", MaxProcfileSize)
	if err != nil || data == nil {
		return nil, err
	}
	return ParseProcfile(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
}

// ProcfileBuildpack runs apps that ship their own commands or binaries: it
// detects a Procfile, compiles nothing, and releases the Procfile's types.
type ProcfileBuildpack struct{}

var _ Buildpack = (*ProcfileBuildpack)(nil)

// Name returns "procfile".
func (*ProcfileBuildpack) Name() string { return "procfile" }

// LooksFor returns "Procfile".
func (*ProcfileBuildpack) LooksFor() string { return "Procfile" }

// Detect reports whether the app has a Procfile.
func (*ProcfileBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	return exists(filepath.Join(w.SourceDir, "Procfile"))
}

// Compile does nothing.
func (*ProcfileBuildpack) Compile(context.Context, *Workspace) error { return nil }

// Release returns the Procfile's process types.
func (*ProcfileBuildpack) Release(_ context.Context, w *Workspace) (*ReleaseInfo, error) {
	procs, err := ReadProcfile(w.SourceDir)
	if err != nil {
		return nil, err
	}
	return &ReleaseInfo{Processes: procs}, nil
}

// exists reports whether p exists (without following a final symlink).
func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
