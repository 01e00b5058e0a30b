package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
)

// orgInfo is one line of `strata orgs`.
type orgInfo struct {
	Name      string              `json:"name"`
	Spaces    int                 `json:"spaces"`
	Placement api.PlacementPolicy `json:"placement"`
}

func (m *Main) orgsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "orgs",
		Short: "List orgs and their default placement policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client()
			if err != nil {
				return err
			}
			spaces, err := c.Spaces(cmd.Context())
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
			if asJSON {
				return printJSON(m.Stdout, orgs)
			}
			t := newTable(m.Stdout, "NAME", "SPACES", "PLACEMENT")
			for _, o := range orgs {
				t.row(o.Name, fmt.Sprint(o.Spaces), o.Placement.String())
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(m.orgSetPlacementCommand())
	return cmd
}

func (m *Main) orgSetPlacementCommand() *cobra.Command {
	var f placementFlags
	cmd := &cobra.Command{
		Use:   "set-placement ORG",
		Short: "Set the default placement policy of an org (admin); spaces and apps override it field by field",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.policy()
			if err != nil {
				return err
			}
			c, err := m.client()
			if err != nil {
				return err
			}
			spaces, err := c.Spaces(cmd.Context())
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(spaces, func(sp *api.SpaceInfo) bool { return sp.Org == args[0] }) {
				return api.Errorf(api.ENotFound, "org %q not found — see `strata orgs` (creating orgs is not supported yet)", args[0])
			}
			if err := c.SetOrgPlacement(cmd.Context(), p); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Org %s places apps on: %s\n", args[0], p.String())
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
