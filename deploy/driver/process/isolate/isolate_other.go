//go:build !linux

package isolate

import (
	"context"
	"errors"
	"os"
	"os/exec"
)

var errNotLinux = errors.New("instance isolation needs Linux")

// Files are the init's standard output and error and its result file.
type Files struct {
	Stdout, Stderr, Result *os.File
}

// Limits are an instance's cgroup limits.
type Limits struct {
	MemoryMB int
	PidsMax  int
}

// Cgroups is unavailable off Linux.
type Cgroups struct{}

// Cgroup is unavailable off Linux.
type Cgroup struct {
	Version int      `json:"version"`
	Paths   []string `json:"paths"`
}

// DetectCgroups fails off Linux.
func DetectCgroups() (*Cgroups, error) { return nil, errNotLinux }

// Version is 0 off Linux.
func (c *Cgroups) Version() int { return 0 }

// Lookup finds nothing off Linux.
func (c *Cgroups) Lookup(parent, id string) *Cgroup { return nil }

// Create fails off Linux.
func (c *Cgroups) Create(ctx context.Context, parent, id string, lim Limits) (*Cgroup, error) {
	return nil, errNotLinux
}

// Sweep does nothing off Linux.
func (c *Cgroups) Sweep(parent string) int { return 0 }

// OOMKills is 0 off Linux.
func (g *Cgroup) OOMKills() int { return 0 }

// Destroy does nothing off Linux.
func (g *Cgroup) Destroy(ctx context.Context) error { return nil }

// Start fails off Linux.
func Start(ctx context.Context, cfg *InitConfig, files Files, cg *Cgroup) (*exec.Cmd, error) {
	return nil, errNotLinux
}

// StartNetwork fails off Linux.
func StartNetwork(ctx context.Context, cfg *InitConfig, files Files, cg *Cgroup, attach Attach) (*exec.Cmd, error) {
	return nil, errNotLinux
}

// PrepareDirs fails off Linux.
func PrepareDirs(dirs []string, uid, gid int) error { return errNotLinux }
