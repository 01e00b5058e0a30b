package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/manifest"
)

// limit shows used/allowed ("-" for unlimited).
func limit(used, max int, unit func(int) string) string {
	if max == 0 {
		return unit(used) + " / -"
	}
	return unit(used) + " / " + unit(max)
}

func (m *Main) quotasCommand() *cobra.Command {
	var org string
	cmd := m.appCmd(appSpec{
		use:   "quotas [--org O]",
		short: "Show the quotas of an org and its spaces, with what their apps use",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			o, err := m.orgOr(org)
			if err != nil {
				return err
			}
			qs, err := c.Quotas(a.ctx, o)
			if err != nil {
				return err
			}
			return a.print(qs, func() error {
				count := func(n int) string { return fmt.Sprint(n) }
				t := newTable(m.Stdout, "SCOPE", "MEMORY", "INSTANCES", "APPS", "ROUTES")
				for _, q := range qs {
					scope := "org " + q.Org
					if q.Space != "" {
						scope = "space " + q.Space
					}
					t.row(scope, limit(q.Used.MemoryMB, q.Quota.MemoryMB, megabytes), limit(q.Used.Instances, q.Quota.Instances, count),
						limit(q.Used.Apps, q.Quota.Apps, count), limit(q.Used.Routes, q.Quota.Routes, count))
				}
				return t.flush()
			})
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "the org (default: the target's)")

	var sorg, space, memory string
	var instances, apps, routes int
	var req api.QuotaRequest
	set := m.appCmd(appSpec{
		use:   "set [--org O] [--space S] [--memory SIZE] [--instances N] [--apps N] [--routes N]",
		short: "Set the quota of an org, or of one of its spaces (admin); 0 is unlimited, all 0 removes it",
		args:  cobra.NoArgs,
		name:  noApp,
		check: func(a *appCall) error {
			o, err := m.orgOr(sorg)
			if err != nil {
				return err
			}
			req = api.QuotaRequest{Org: o, Space: space, Quota: api.Quota{Instances: instances, Apps: apps, Routes: routes}}
			if memory != "" && memory != "0" {
				if req.Quota.MemoryMB, err = manifest.ParseSize(memory); err != nil {
					return err
				}
			}
			if instances < 0 || apps < 0 || routes < 0 {
				return api.Errorf(api.EInvalid, "a quota is not negative — give 0 for unlimited")
			}
			return (api.Target{Org: req.Org, Space: req.Space}).Validate()
		},
		run: func(a *appCall, c *client.Client) error {
			q, err := c.SetQuota(a.ctx, req)
			if err != nil {
				return err
			}
			who := "org " + q.Org
			if q.Space != "" {
				who = "space " + q.Org + "/" + q.Space
			}
			if q.Quota.IsZero() {
				fmt.Fprintf(m.Stdout, "The %s has no quota\n", who)
				return nil
			}
			fmt.Fprintf(m.Stdout, "Quota of the %s: memory %s, instances %d, apps %d, routes %d (0 = unlimited)\n", who,
				megabytes(q.Quota.MemoryMB), q.Quota.Instances, q.Quota.Apps, q.Quota.Routes)
			return nil
		},
	})
	set.Flags().StringVar(&sorg, "org", "", "the org (default: the target's)")
	set.Flags().StringVar(&space, "space", "", "a space of the org (default: the org itself)")
	set.Flags().StringVar(&memory, "memory", "", "total memory of the apps' instances, e.g. 4G")
	set.Flags().IntVar(&instances, "instances", 0, "total instances")
	set.Flags().IntVar(&apps, "apps", 0, "number of apps")
	set.Flags().IntVar(&routes, "routes", 0, "number of routes")
	cmd.AddCommand(set)
	return cmd
}
