package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
)

func (m *Main) nodesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List executor nodes (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := m.client()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if nodes == nil {
					nodes = []api.Node{}
				}
				return printJSON(m.Stdout, nodes)
			}
			if len(nodes) == 0 {
				fmt.Fprintln(m.Stdout, "No nodes have reported yet.")
				return nil
			}
			t := newTable(m.Stdout, "ID", "STATE", "SUBSTRATE", "ISOLATIONS", "CPUS", "MEMORY", "INSTANCES", "LAST SEEN")
			now := m.Now()
			for _, n := range nodes {
				iso := make([]string, len(n.Isolations))
				for i, x := range n.Isolations {
					iso[i] = string(x)
				}
				t.row(n.ID, n.State, string(n.Substrate), orDash(strings.Join(iso, ",")), strconv.Itoa(n.Capacity.CPUs),
					megabytes(n.Capacity.MemoryMB), strconv.Itoa(n.Instances), uptime(now, n.LastSeen)+" ago")
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(m.drainCommands()...)
	return cmd
}
