package main

import (
	"fmt"
	"slices"

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
		short: "List orgs and their default placement policies",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			spaces, err := c.Spaces(a.ctx)
			if err != nil {
				return err
			}
			orgs := []*orgInfo{}
			byName := map[string]*orgInfo{}
			for _, sp := range spaces {
				o := byName[sp.Org]
				if o == nil {
					o = &orgInfo{Name: sp.Org, Placement: sp.OrgPlacement}
					byName[sp.Org] = o
					orgs = append(orgs, o)
				}
				o.Spaces++
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
	cmd.AddCommand(m.orgSetPlacementCommand())
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
			spaces, err := c.Spaces(a.ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(spaces, func(sp *api.SpaceInfo) bool { return sp.Org == org }) {
				return api.Errorf(api.ENotFound, "org %q not found — see `strata orgs` (creating orgs is not supported yet)", org)
			}
			if err := c.SetOrgPlacement(a.ctx, p); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Org %s places apps on: %s\n", org, p.String())
			return nil
		},
	})
	f.add(cmd)
	return cmd
}
