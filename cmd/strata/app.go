package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) appCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "app NAME",
		short: "Show an app: release, URLs and where its instances run",
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			d, err := c.App(a.ctx, a.name)
			if err != nil {
				return err
			}
			return a.print(d, func() error { return writeAppDetail(m.Stdout, d, m.Now()) })
		},
	})
}

// scaleToZero returns the web process's scale-to-zero idle time in seconds.
func scaleToZero(d *api.AppDetail) int {
	for _, p := range d.Processes {
		if p.Type == api.ProcessWeb {
			return p.ScaleToZero
		}
	}
	return 0
}

func afterIdle(sec int) string {
	if sec == 0 {
		return "off"
	}
	return "after " + api.IdleTime(sec)
}

// writeAppDetail prints an app the way `strata app` shows it.
func writeAppDetail(w io.Writer, d *api.AppDetail, now time.Time) error {
	rel := releaseLabel(d.CurrentRelease)
	if d.Release != nil && d.Release.Description != "" {
		rel += " (" + d.Release.Description + ")"
	}
	fmt.Fprintf(w, "name:      %s\n", d.Name)
	state := string(d.State)
	if d.Sleeping {
		state += ", sleeping (scale to zero: web stopped until the next request)"
	}
	fmt.Fprintf(w, "state:     %s\n", state)
	if idle := scaleToZero(d); idle != 0 || !d.LastRequest.IsZero() {
		served := "no request seen"
		if !d.LastRequest.IsZero() {
			served = "last served " + uptime(now, d.LastRequest) + " ago"
		}
		fmt.Fprintf(w, "idle:      %s, scale to zero %s\n", served, afterIdle(idle))
	}
	fmt.Fprintf(w, "release:   %s\n", rel)
	if b := d.LastBuild; b != nil {
		line := string(b.State)
		if b.Buildpack != "" {
			line += ", " + b.Buildpack
		}
		if b.State == api.BuildFailed && b.Reason != "" {
			line += ": " + b.Reason
		}
		fmt.Fprintf(w, "build:     %s\n", line)
	}
	fmt.Fprintf(w, "urls:      %s\n", orDash(strings.Join(d.URLs, ", ")))
	if len(d.Processes) > 0 {
		var ps []string
		for _, p := range d.Processes {
			ps = append(ps, fmt.Sprintf("%s ×%d (%s memory, %s disk%s)", p.Type, p.Instances, megabytes(p.MemoryMB), megabytes(p.DiskMB), healthLabel(p)))
		}
		fmt.Fprintf(w, "processes: %s\n", strings.Join(ps, ", "))
	}
	fmt.Fprintf(w, "placement: %s\n", d.Placement.String())
	if d.Unplaceable != "" {
		fmt.Fprintf(w, "warning:   %s\n", d.Unplaceable)
	}
	fmt.Fprintln(w)
	if len(d.Instances) == 0 {
		fmt.Fprintln(w, "No instances.")
		return nil
	}
	insts := append([]*api.Instance(nil), d.Instances...)
	sort.SliceStable(insts, func(i, j int) bool {
		if insts[i].Process != insts[j].Process {
			return insts[i].Process < insts[j].Process
		}
		return insts[i].Index < insts[j].Index
	})
	t := newTable(w, "INDEX", "STATE", "NODE", "SUBSTRATE", "ISOLATION", "RELEASE", "RESTARTS", "UPTIME", "CPU", "MEMORY")
	for _, in := range insts {
		index := strconv.Itoa(in.Index)
		if in.Process != "" && in.Process != api.ProcessWeb {
			index = in.Process + "/" + index
		}
		state := string(in.State)
		if in.State == api.InstanceCrashed && in.Reason != "" {
			state += " (" + in.Reason + ")"
		}
		up, cpu, mem := "-", "-", "-"
		if in.State == api.InstanceRunning {
			up = uptime(now, in.StartedAt)
			cpu, mem = usageLabels(in)
		}
		t.row(index, state, orDash(in.NodeID), orDash(string(in.Substrate)), orDash(isolationLabel(in.Isolation, in.Accel)),
			releaseLabel(in.Release), strconv.Itoa(in.Restarts), up, cpu, mem)
	}
	return t.flush()
}
