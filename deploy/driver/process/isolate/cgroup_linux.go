package isolate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cgroups is the cgroup hierarchy layout found on this host.
type Cgroups struct {
	version int
	v2      string            // unified mount point (version 2)
	v1      map[string]string // controller → mount point (version 1)
}

// DetectCgroups finds a usable memory controller: cgroup v2 when the unified
// hierarchy offers "memory", else the cgroup v1 "memory" hierarchy (with
// "pids" when mounted). It returns an error saying what is missing otherwise.
func DetectCgroups() (*Cgroups, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cannot read mounts: %w", err)
	}
	return detectCgroups(ParseMountinfo(string(data)))
}

func detectCgroups(mounts []Mount) (*Cgroups, error) {
	v1 := map[string]string{}
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup2":
			ctrl, err := os.ReadFile(filepath.Join(m.Point, "cgroup.controllers"))
			if err == nil && slices.Contains(strings.Fields(string(ctrl)), "memory") {
				return &Cgroups{version: 2, v2: m.Point}, nil
			}
		case "cgroup":
			for _, c := range []string{"memory", "pids"} {
				if slices.Contains(m.SuperOpts, c) && v1[c] == "" {
					v1[c] = m.Point
				}
			}
		}
	}
	if v1["memory"] == "" {
		return nil, errors.New("no cgroup memory controller is mounted (neither cgroup v2 with memory nor a cgroup v1 memory hierarchy)")
	}
	return &Cgroups{version: 1, v1: v1}, nil
}

// Version is 1 or 2.
func (c *Cgroups) Version() int { return c.version }

// Limits are an instance's cgroup limits.
type Limits struct {
	MemoryMB int // 0: no memory limit
	PidsMax  int // 0: no pids limit
}

// Cgroup is one instance's cgroup; it marshals to JSON so a driver can persist
// it in a handle and find it again after a restart.
type Cgroup struct {
	Version int      `json:"version"`
	Paths   []string `json:"paths"` // the instance's directory in each hierarchy; Paths[0] holds the memory controller
}

// paths returns the instance's directory in each hierarchy used.
func (c *Cgroups) paths(parent, id string) []string {
	if c.version == 2 {
		return []string{filepath.Join(c.v2, parent, id)}
	}
	out := []string{filepath.Join(c.v1["memory"], parent, id)}
	if p := c.v1["pids"]; p != "" && p != c.v1["memory"] {
		out = append(out, filepath.Join(p, parent, id))
	}
	return out
}

// Lookup returns the cgroup of id under parent if it exists, e.g. to clean up
// after an instance that could not be recovered.
func (c *Cgroups) Lookup(parent, id string) *Cgroup {
	g := &Cgroup{Version: c.version}
	for _, p := range c.paths(parent, id) {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			g.Paths = append(g.Paths, p)
		}
	}
	if len(g.Paths) == 0 {
		return nil
	}
	return g
}

// Create makes the cgroup of instance id under parent with limits lim. A
// stale cgroup of the same id is killed and replaced.
func (c *Cgroups) Create(ctx context.Context, parent, id string, lim Limits) (*Cgroup, error) {
	if old := c.Lookup(parent, id); old != nil {
		if err := old.Destroy(ctx); err != nil {
			return nil, err
		}
	}
	if c.version == 2 {
		if err := enableV2(c.v2, parent); err != nil {
			return nil, err
		}
	}
	g := &Cgroup{Version: c.version, Paths: c.paths(parent, id)}
	for _, p := range g.Paths {
		// Destroy of the parent's last instance removes the parent; retry
		// when that races with this.
		err := os.MkdirAll(p, 0o755)
		for try := 0; errors.Is(err, fs.ErrNotExist) && try < 3; try++ {
			err = os.MkdirAll(p, 0o755)
		}
		if err != nil {
			_ = g.Destroy(ctx)
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	if err := g.limit(lim); err != nil {
		_ = g.Destroy(ctx)
		return nil, err
	}
	return g, nil
}

// enableV2 creates root/parent and delegates the memory and pids controllers
// to its children.
func enableV2(root, parent string) error {
	dir := filepath.Join(root, parent)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	avail, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	levels := []string{root}
	for _, part := range strings.Split(filepath.Clean(parent), string(filepath.Separator)) {
		levels = append(levels, filepath.Join(levels[len(levels)-1], part))
	}
	for _, d := range levels {
		for _, c := range []string{"memory", "pids"} {
			if !slices.Contains(strings.Fields(string(avail)), c) {
				continue
			}
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil && c == "memory" {
				return fmt.Errorf("enable the memory controller in %s: %w", d, err)
			}
		}
	}
	return nil
}

func (g *Cgroup) limit(lim Limits) error {
	mem := g.Paths[0]
	write := func(dir, file string, v int64) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(v, 10)), 0); err != nil {
			return fmt.Errorf("set cgroup %s: %w", file, err)
		}
		return nil
	}
	if lim.MemoryMB > 0 {
		b := int64(lim.MemoryMB) << 20
		if g.Version == 2 {
			if err := write(mem, "memory.max", b); err != nil {
				return err
			}
			_ = write(mem, "memory.swap.max", 0) // absent without swap accounting
		} else {
			if err := write(mem, "memory.limit_in_bytes", b); err != nil {
				return err
			}
			_ = write(mem, "memory.memsw.limit_in_bytes", b) // absent without swap accounting
		}
	}
	if lim.PidsMax > 0 {
		for _, p := range g.Paths {
			if _, err := os.Stat(filepath.Join(p, "pids.max")); err == nil {
				if err := write(p, "pids.max", int64(lim.PidsMax)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Add moves pid into the cgroup.
func (g *Cgroup) Add(pid int) error {
	for _, p := range g.Paths {
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", p, err)
		}
	}
	return nil
}

// Procs lists the processes in the cgroup.
func (g *Cgroup) Procs() []int {
	var out []int
	for _, p := range g.Paths {
		data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(out, pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Kill sends SIGKILL to every process in the cgroup until it is empty or ctx
// ends.
func (g *Cgroup) Kill(ctx context.Context) error {
	if g.Version == 2 {
		_ = os.WriteFile(filepath.Join(g.Paths[0], "cgroup.kill"), []byte("1"), 0) // kernel ≥ 5.14
	}
	for {
		procs := g.Procs()
		if len(procs) == 0 {
			return nil
		}
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cgroup %s still has processes %v: %w", g.Paths[0], procs, ctx.Err())
		case <-t.C:
		}
	}
}

// OOMKills is how many processes the kernel's OOM killer killed in the
// cgroup for exceeding its memory limit.
func (g *Cgroup) OOMKills() int {
	file := "memory.oom_control" // v1, "oom_kill N" since Linux 4.13
	if g.Version == 2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(g.Paths[0], file))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// Sweep removes the empty cgroups under parent: those of instances that
// ended while no driver watched them. Cgroups with processes are left alone.
func (c *Cgroups) Sweep(parent string) (removed int) {
	roots := []string{}
	for _, p := range c.paths(parent, "x") {
		roots = append(roots, filepath.Dir(p))
	}
	for _, root := range roots {
		ents, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			g := &Cgroup{Version: c.version, Paths: []string{filepath.Join(root, e.Name())}}
			if len(g.Procs()) == 0 && syscall.Rmdir(g.Paths[0]) == nil {
				removed++
			}
		}
	}
	return removed
}

// Destroy kills what is left in the cgroup and removes it. A cgroup already
// removed is not an error.
func (g *Cgroup) Destroy(ctx context.Context) error {
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Kill(kctx); err != nil {
		return err
	}
	for _, p := range g.Paths {
		for {
			err := syscall.Rmdir(p)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || kctx.Err() != nil {
				return fmt.Errorf("remove cgroup %s: %w", p, err)
			}
			time.Sleep(5 * time.Millisecond) // exiting tasks still counted
		}
		_ = syscall.Rmdir(filepath.Dir(p)) // the parent, once its last instance is gone
	}
	return nil
}
