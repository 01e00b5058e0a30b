package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api/client"
)

// drainCommands are `strata nodes drain ID` and `strata nodes undrain ID`.
func (m *Main) drainCommands() []*cobra.Command {
	mk := func(use, short string, drain bool) *cobra.Command {
		return m.appCmd(appSpec{
			use:   use + " ID",
			short: short,
			name:  noApp,
			run: func(a *appCall, c *client.Client) error {
				do := c.UndrainNode
				if drain {
					do = c.DrainNode
				}
				n, err := do(a.ctx, a.args[0])
				if err != nil {
					return err
				}
				if drain {
					fmt.Fprintf(m.Stdout, "Node %s is draining: its %d instances move to other nodes, each replacement running before the old one stops; it takes no new placements until `strata nodes undrain %s`.\n", n.ID, n.Instances, n.ID)
				} else {
					fmt.Fprintf(m.Stdout, "Node %s is %s and takes placements again.\n", n.ID, n.State)
				}
				return nil
			},
		})
	}
	return []*cobra.Command{
		mk("drain", "Move instances off a node and keep new ones away (admin)", true),
		mk("undrain", "Let a drained node take placements again (admin)", false),
	}
}
