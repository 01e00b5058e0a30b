package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// orgInfo is one line of `strata orgs`.
type orgInfo struct {
	Name      string              `json:"name"`
	Spaces    int                 `json:"spaces"`
	Placement api.PlacementPolicy `json:"placement"`
}

func (m *Main) orgsCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "orgs",
		short: "List the orgs you may see, their spaces and default placement policies",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			list, err := c.Orgs(a.ctx)
			if err != nil {
				return err
			}
			orgs := []*orgInfo{}
			for _, o := range list {
				info := &orgInfo{Name: o.Name, Spaces: len(o.Spaces)}
				// The org's policy comes with the list of its spaces.
				if spaces, err := c.WithTarget(api.Target{Org: o.Name}).Spaces(a.ctx); err == nil && len(spaces) > 0 {
					info.Placement = spaces[0].OrgPlacement
				}
				orgs = append(orgs, info)
			}
			return a.print(orgs, func() error {
				t := newTable(m.Stdout, "NAME", "SPACES", "PLACEMENT")
				for _, o := range orgs {
					t.row(o.Name, fmt.Sprint(o.Spaces), o.Placement.String())
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.orgSetPlacementCommand(), m.orgCreateCommand(), m.orgDeleteCommand())
	return cmd
}

func (m *Main) orgSetPlacementCommand() *cobra.Command {
	var f placementFlags
	cmd := m.appCmd(appSpec{
		use:   "set-placement ORG",
		short: "Set the default placement policy of an org (admin); spaces and apps override it field by field",
		name:  noApp,
		check: f.check,
		run: func(a *appCall, c *client.Client) error {
			org, p := a.args[0], f.parsed
			if err := api.ValidateName("org", org); err != nil {
				return err
			}
			if err := c.WithTarget(api.Target{Org: org}).SetOrgPlacement(a.ctx, p); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Org %s places apps on: %s\n", org, p.String())
			return nil
		},
	})
	f.add(cmd)
	return cmd
}
