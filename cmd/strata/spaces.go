package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) spacesCommand() *cobra.Command {
	var org string
	cmd := m.appCmd(appSpec{
		use:   "spaces [--org O]",
		short: "List the spaces of an org (default: the target's) and their default placement policies",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			o, err := m.orgOr(org)
			if err != nil {
				return err
			}
			spaces, err := c.WithTarget(api.Target{Org: o}).Spaces(a.ctx)
			if err != nil {
				return err
			}
			return a.print(spaces, func() error {
				t := newTable(m.Stdout, "NAME", "ORG", "PLACEMENT", "ORG PLACEMENT")
				for _, sp := range spaces {
					t.row(sp.Name, sp.Org, sp.Placement.String(), sp.OrgPlacement.String())
				}
				return t.flush()
			})
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "the org (default: the target's)")
	cmd.AddCommand(m.setPlacementCommand(), m.spaceCreateCommand(), m.spaceDeleteCommand())
	return cmd
}

// placementFlags are the flags that describe a placement policy.
type placementFlags struct {
	substrate, isolation string
	labels               []string
	clear                bool

	parsed api.PlacementPolicy // the policy, once check has read the flags
}

// check reads the flags into f.parsed, as the check of a set-placement
// command.
func (f *placementFlags) check(*appCall) (err error) {
	f.parsed, err = f.policy()
	return err
}

func (f *placementFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.substrate, "substrate", "", "metal, vm or any")
	cmd.Flags().StringVar(&f.isolation, "isolation", "", "process, process-unconfined, container, microvm or any")
	cmd.Flags().StringArrayVar(&f.labels, "label", nil, "node label KEY=VALUE that nodes must have (repeatable)")
	cmd.Flags().BoolVar(&f.clear, "clear", false, "remove the policy")
}

func (f *placementFlags) policy() (api.PlacementPolicy, error) {
	p := api.PlacementPolicy{Substrate: api.Substrate(f.substrate), Isolation: api.Isolation(f.isolation)}
	for _, l := range f.labels {
		k, v, ok := cutLabel(l)
		if !ok {
			return p, api.Errorf(api.EInvalid, "label %q is not KEY=VALUE — write e.g. --label zone=a", l)
		}
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
	if f.clear != p.IsZero() {
		return p, api.Errorf(api.EInvalid, "give --substrate, --isolation or --label, or --clear alone")
	}
	return p, p.Validate()
}

func cutLabel(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}

func (m *Main) setPlacementCommand() *cobra.Command {
	var f placementFlags
	cmd := m.appCmd(appSpec{
		use:   "set-placement SPACE",
		short: "Set the default placement policy of a space (admin); apps override it field by field",
		name:  noApp,
		check: f.check,
		run: func(a *appCall, c *client.Client) error {
			sp, err := c.SetSpacePlacement(a.ctx, a.args[0], f.parsed)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Space %s places apps on: %s\n", sp.Name, sp.Placement.String())
			return nil
		},
	})
	f.add(cmd)
	return cmd
}
