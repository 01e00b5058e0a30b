package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api/client"
)

func (m *Main) appsCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "apps",
		short: "List apps",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			apps, err := c.Apps(a.ctx)
			if err != nil {
				return err
			}
			return a.print(apps, func() error {
				if len(apps) == 0 {
					fmt.Fprintln(m.Stdout, "No apps yet. Deploy one with: strata push NAME")
					return nil
				}
				t := newTable(m.Stdout, "NAME", "STATE", "INSTANCES", "RELEASE", "URL")
				for _, app := range apps {
					t.row(app.Name, string(app.State), fmt.Sprintf("%d/%d", app.Running, app.Desired), releaseLabel(app.CurrentRelease), orDash(app.URL))
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.appsCreateCommand(), m.appsDeleteCommand(), m.appCmd(appSpec{
		use:   "purge-cache NAME",
		short: "Delete the app's build cache on every builder; the next build starts from an empty one",
		run: func(a *appCall, c *client.Client) error {
			if err := c.PurgeCache(a.ctx, a.name); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Asked the builders to purge the build cache of %s\n", a.name)
			return nil
		},
	}))
	return cmd
}

func (m *Main) appsCreateCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "create NAME",
		short: "Create an app",
		name:  newAppArg,
		run: func(a *appCall, c *client.Client) error {
			app, err := c.CreateApp(a.ctx, a.name)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Created app %s. Deploy it with: strata push %s\n", app.Name, app.Name)
			return nil
		},
	})
}

func (m *Main) appsDeleteCommand() *cobra.Command {
	var force bool
	cmd := m.appCmd(appSpec{
		use:   "delete NAME",
		short: "Delete an app: stops its instances and unmaps its routes",
		long: "Delete an app: stops its instances and unmaps its routes.\n\n" +
			"On a terminal it asks for confirmation unless -f is given; without a\n" +
			"terminal (scripts) it deletes without asking.",
		run: func(a *appCall, c *client.Client) error {
			if !force && isTerminal(m.Stdin) {
				fmt.Fprintf(m.Stderr, "Delete app %s, stopping its instances and unmapping its routes? [y/N] ", a.name)
				answer, _ := bufio.NewReader(m.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					fmt.Fprintln(m.Stderr, "Not deleted.")
					return nil
				}
			}
			if err := c.DeleteApp(a.ctx, a.name); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted app %s\n", a.name)
			return nil
		},
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}
