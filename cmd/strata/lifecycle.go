package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/manifest"
)

func (m *Main) releasesCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "releases NAME",
		short: "List an app's releases: version, time, actor and what changed",
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			rels, err := c.Releases(a.ctx, a.name)
			if err != nil {
				return err
			}
			return a.print(rels, func() error {
				if len(rels) == 0 {
					fmt.Fprintf(m.Stdout, "No releases yet. Deploy with: strata push %s\n", a.name)
					return nil
				}
				app, err := c.App(a.ctx, a.name)
				if err != nil {
					return err
				}
				t := newTable(m.Stdout, "VERSION", "", "CREATED", "ACTOR", "DESCRIPTION")
				for _, r := range rels {
					mark := ""
					if r.Version == app.CurrentRelease {
						mark = "current"
					}
					t.row(releaseLabel(r.Version), mark, ago(m.Now(), r.CreatedAt), orDash(r.Actor), orDash(r.Description))
				}
				return t.flush()
			})
		},
	})
}

// ago formats a past time as "3m12s ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return uptime(now, t) + " ago"
}

// parseVersion parses "3" or "v3".
func parseVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V"))
	if err != nil || n <= 0 {
		return 0, api.Errorf(api.EInvalid, "release %q is not a version — give a number like 3 or v3 from strata releases", s)
	}
	return n, nil
}

func (m *Main) rollbackCommand() *cobra.Command {
	version := 0 // 0: the previous different release
	return m.appCmd(appSpec{
		use:   "rollback NAME [VERSION]",
		short: "Make a copy of an older release current, without rebuilding (default: the previous one)",
		long: "Roll back by creating a new release that copies an older release's droplet and\n" +
			"config. VERSION defaults to the newest earlier release that differs from the\n" +
			"current one. The converger rolls it out instance by instance.",
		args: cobra.RangeArgs(1, 2),
		check: func(a *appCall) (err error) {
			if len(a.args) == 2 {
				version, err = parseVersion(a.args[1])
			}
			return err
		},
		run: func(a *appCall, c *client.Client) error {
			rel, err := c.Rollback(a.ctx, a.name, version)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%s: released %s — watch it roll out with: strata app %s\n", rel.Description, releaseLabel(rel.Version), a.name)
			return nil
		},
	})
}

func (m *Main) envCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "env NAME",
		short: "Show an app's config vars (set and unset them with env set / env unset)",
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			env, err := c.Env(a.ctx, a.name)
			if err != nil {
				return err
			}
			return a.print(env, func() error {
				if len(env) == 0 {
					fmt.Fprintf(m.Stdout, "No config vars. Set one with: strata env set %s NAME=VALUE\n", a.name)
					return nil
				}
				keys := make([]string, 0, len(env))
				for k := range env {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(m.Stdout, "%s=%s\n", k, env[k])
				}
				return nil
			})
		},
	})
	cmd.AddCommand(m.envSetCommand(), m.envUnsetCommand())
	return cmd
}

func (m *Main) envSetCommand() *cobra.Command {
	var set map[string]string
	return m.appCmd(appSpec{
		use:   "set NAME KEY=VALUE…",
		short: "Set config vars: a new release, rolled out instance by instance",
		args:  cobra.MinimumNArgs(2),
		check: func(a *appCall) error {
			set = map[string]string{}
			for _, arg := range a.args[1:] {
				k, v, err := api.ParseEnvAssignment(arg)
				if err != nil {
					return err
				}
				set[k] = v
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			return m.changeEnv(a, c, api.EnvChange{Set: set})
		},
	})
}

func (m *Main) envUnsetCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "unset NAME KEY…",
		short: "Unset config vars: a new release, rolled out instance by instance",
		args:  cobra.MinimumNArgs(2),
		check: func(a *appCall) error {
			for _, k := range a.args[1:] {
				if err := api.ValidateEnvName(k); err != nil {
					return err
				}
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			return m.changeEnv(a, c, api.EnvChange{Unset: a.args[1:]})
		},
	})
}

// changeEnv sends one config change and says whether it made a release.
func (m *Main) changeEnv(a *appCall, c *client.Client, ch api.EnvChange) error {
	before, err := c.App(a.ctx, a.name)
	if err != nil {
		return err
	}
	rel, err := c.ChangeEnv(a.ctx, a.name, ch)
	if err != nil {
		return err
	}
	if rel == nil || rel.Version == before.CurrentRelease {
		fmt.Fprintln(m.Stdout, "Config unchanged: no new release.")
		return nil
	}
	fmt.Fprintf(m.Stdout, "%s: released %s\n", rel.Description, releaseLabel(rel.Version))
	return nil
}

func (m *Main) scaleCommand() *cobra.Command {
	var instances int
	var memory, disk, process, idle string
	var req api.ScaleRequest
	cmd := m.appCmd(appSpec{
		use:   "scale NAME [-i N] [-m 512M] [-k 1G] [--process TYPE] [--scale-to-zero DURATION|off]",
		short: "Change instances, memory or disk of a process type",
		long: "Change the formation of one process type (default web). A new instance count\n" +
			"takes effect without a release; new memory or disk limits make a release so\n" +
			"instances are replaced one by one. Only web instances get routes.\n" +
			"--scale-to-zero 15m stops the web instances after 15 minutes without\n" +
			"requests; the next request wakes them (it is held until one is healthy).\n" +
			"Workers keep running. --scale-to-zero off disables it.",
		check: func(a *appCall) error {
			req = api.ScaleRequest{Process: process}
			if a.cmd.Flags().Changed("instances") {
				req.Instances = &instances
			}
			for _, f := range []struct {
				flag, val string
				dst       **int
			}{{"memory", memory, &req.MemoryMB}, {"disk", disk, &req.DiskMB}} {
				if !a.cmd.Flags().Changed(f.flag) {
					continue
				}
				n, err := manifest.ParseSize(f.val)
				if err != nil {
					return err
				}
				*f.dst = &n
			}
			if a.cmd.Flags().Changed("scale-to-zero") {
				sec, err := manifest.ParseScaleToZero(idle)
				if err != nil {
					return err
				}
				req.ScaleToZero = &sec
			}
			if req.Instances == nil && req.MemoryMB == nil && req.DiskMB == nil && req.ScaleToZero == nil {
				return api.Errorf(api.EInvalid, "nothing to scale — give -i N, -m SIZE, -k SIZE or --scale-to-zero DURATION")
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			res, err := c.Scale(a.ctx, a.name, req)
			if err != nil {
				return err
			}
			p := res.Process
			fmt.Fprintf(m.Stdout, "Scaled %s %s to %d× (%s memory, %s disk)\n", a.name, p.Type, p.Instances, megabytes(p.MemoryMB), megabytes(p.DiskMB))
			if req.ScaleToZero != nil {
				if p.ScaleToZero == 0 {
					fmt.Fprintf(m.Stdout, "Scale to zero is off\n")
				} else {
					fmt.Fprintf(m.Stdout, "Scale to zero after %s without requests\n", api.IdleTime(p.ScaleToZero))
				}
			}
			if res.Release != nil {
				fmt.Fprintf(m.Stdout, "Released %s to apply the new limits\n", releaseLabel(res.Release.Version))
			}
			return nil
		},
	})
	cmd.Flags().IntVarP(&instances, "instances", "i", 0, "number of instances")
	cmd.Flags().StringVarP(&memory, "memory", "m", "", "memory limit per instance (e.g. 512M, 1G)")
	cmd.Flags().StringVarP(&disk, "disk", "k", "", "disk limit per instance (e.g. 1G)")
	cmd.Flags().StringVar(&process, "process", api.ProcessWeb, "process type (from the Procfile)")
	cmd.Flags().StringVar(&idle, "scale-to-zero", "", "stop web instances after this long without requests, e.g. 15m (at least 1m; off to disable)")
	return cmd
}

func (m *Main) stateCommand(verb string, state api.AppState) *cobra.Command {
	short := "Start a stopped app"
	if state == api.AppStopped {
		short = "Stop an app's instances (its releases and formation are kept)"
	}
	return m.appCmd(appSpec{
		use:   verb + " NAME",
		short: short,
		run: func(a *appCall, c *client.Client) error {
			app, err := c.SetState(a.ctx, a.name, state)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "App %s is %s\n", a.name, app.State)
			return nil
		},
	})
}

func (m *Main) restartCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "restart NAME",
		short: "Replace an app's instances one by one (rolling restart)",
		run: func(a *appCall, c *client.Client) error {
			rel, err := c.Restart(a.ctx, a.name)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Restarting %s: released %s — instances are replaced one by one\n", a.name, releaseLabel(rel.Version))
			return nil
		},
	})
}

func (m *Main) eventsCommand() *cobra.Command {
	var org string
	var platform bool
	cmd := m.appCmd(appSpec{
		use:   "events NAME | events --org O | events --platform",
		short: "Show an app's audit trail (pushes, builds, releases, scale, config, restarts), an org's (roles, quotas, spaces), or the platform's (users, certificates)",
		args:  cobra.MaximumNArgs(1),
		name: func(args []string) (string, error) {
			if platform {
				if len(args) > 0 || org != "" {
					return "", api.Errorf(api.EInvalid, "give an app, --org or --platform, one of them")
				}
				return "", nil
			}
			if org != "" {
				if len(args) > 0 {
					return "", api.Errorf(api.EInvalid, "give an app or --org, not both")
				}
				return "", api.ValidateName("org", org)
			}
			if len(args) == 0 {
				return "", api.Errorf(api.EInvalid, "which app? strata events NAME (or --org O for an org's events)")
			}
			return appArg(args)
		},
		json: true,
		run: func(a *appCall, c *client.Client) error {
			var evs []*api.Event
			var err error
			switch {
			case platform:
				evs, err = c.PlatformEvents(a.ctx)
			case org != "":
				evs, err = c.OrgEvents(a.ctx, org)
			default:
				evs, err = c.Events(a.ctx, a.name)
			}
			if err != nil {
				return err
			}
			return a.print(evs, func() error {
				t := newTable(m.Stdout, "TIME", "TYPE", "ACTOR", "MESSAGE")
				for _, e := range evs {
					t.row(e.Time.UTC().Format("2006-01-02 15:04:05"), e.Type, orDash(e.Actor), e.Message)
				}
				return t.flush()
			})
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "show the org's events instead of an app's")
	cmd.Flags().BoolVar(&platform, "platform", false, "show the platform's events (users, certificates; admins only)")
	return cmd
}
