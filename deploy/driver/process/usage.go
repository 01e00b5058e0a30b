package process

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

var _ driver.UsageReporter = (*Driver)(nil)

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat (100 on
// every Linux architecture Strata runs on).
const clockTicks = 100

// Usage measures an instance: the processes of its cgroup when it is
// confined (memory from the cgroup), else those of its process group (memory
// as their summed RSS). An unknown id is ENotFound.
func (d *Driver) Usage(_ context.Context, id string) (*driver.Usage, error) {
	p, err := d.get(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.ready:
	default:
		return nil, api.Errorf(api.EUnavailable, "instance %s is still starting", id)
	}
	var pids []int
	if p.cg != nil && len(p.cg.Paths) > 0 {
		pids = cgroupPIDs(p.cg.Paths[0])
	} else {
		pids = groupPIDs("/proc", p.pgid)
	}
	u := &driver.Usage{}
	var rss int64
	for _, pid := range pids {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, ok := parseUsageStat(data)
		if !ok {
			continue
		}
		u.CPUTime += st.CPUTime
		rss += st.RSSPages * int64(os.Getpagesize())
	}
	u.MemoryBytes = rss
	if p.cg != nil && len(p.cg.Paths) > 0 {
		file := "memory.usage_in_bytes"
		if p.cg.Version == 2 {
			file = "memory.current"
		}
		if b, err := os.ReadFile(filepath.Join(p.cg.Paths[0], file)); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				u.MemoryBytes = n
			}
		}
	}
	return u, nil
}

// usageStat is what Usage reads from one /proc/<pid>/stat.
type usageStat struct {
	PGID     int
	CPUTime  time.Duration // utime + stime
	RSSPages int64
}

// parseUsageStat parses the content of /proc/<pid>/stat. The command name may
// hold spaces and parentheses, so fields are counted after its last ')'.
func parseUsageStat(data []byte) (usageStat, bool) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return usageStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15, rss 24.
	if len(f) < 22 {
		return usageStat{}, false
	}
	pgid, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	rss, err4 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || ut < 0 || stime < 0 {
		return usageStat{}, false
	}
	return usageStat{PGID: pgid, CPUTime: time.Duration(ut+stime) * time.Second / clockTicks, RSSPages: rss}, true
}

// groupPIDs lists the processes of process group pgid under procDir.
func groupPIDs(procDir string, pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, ok := parseUsageStat(data); ok && st.PGID == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupPIDs lists the processes of a cgroup directory.
func cgroupPIDs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, l := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(l); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
