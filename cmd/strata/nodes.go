package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) nodesCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "nodes",
		short: "List executor nodes (admin)",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			nodes, err := c.Nodes(a.ctx)
			if err != nil {
				return err
			}
			return a.print(nodes, func() error {
				if len(nodes) == 0 {
					fmt.Fprintln(m.Stdout, "No nodes have reported yet.")
					return nil
				}
				t := newTable(m.Stdout, "ID", "STATE", "SUBSTRATE", "ISOLATIONS", "CPUS", "MEMORY", "INSTANCES", "LAST SEEN")
				now := m.Now()
				for _, n := range nodes {
					iso := make([]string, len(n.Isolations))
					for i, x := range n.Isolations {
						iso[i] = isolationLabel(x, n.Accel)
					}
					t.row(n.ID, n.State, string(n.Substrate), orDash(strings.Join(iso, ",")), strconv.Itoa(n.Capacity.CPUs),
						megabytes(n.Capacity.MemoryMB), strconv.Itoa(n.Instances), uptime(now, n.LastSeen)+" ago")
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.drainCommands()...)
	return cmd
}

// isolationLabel is an isolation as the tables show it: microvm with the
// acceleration its node's driver uses, e.g. "microvm/tcg".
func isolationLabel(iso api.Isolation, accel string) string {
	if iso == api.IsolationMicroVM && accel != "" {
		return string(iso) + "/" + accel
	}
	return string(iso)
}
