package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) domainsCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "domains",
		short: "List the domains routes may use: the platform's, shared ones and your orgs' private ones",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			ds, err := c.Domains(a.ctx)
			if err != nil {
				return err
			}
			return a.print(ds, func() error {
				t := newTable(m.Stdout, "NAME", "SCOPE")
				for i, d := range ds {
					scope := "shared"
					switch {
					case i == 0:
						scope = "the platform's"
					case d.Org != "":
						scope = "private to org " + d.Org
					}
					t.row(d.Name, scope)
				}
				return t.flush()
			})
		},
	})
	var org string
	create := m.appCmd(appSpec{
		use:   "create NAME [--org O]",
		short: "Register a domain: shared by every space (admin), or with --org private to that org's spaces (org managers)",
		name:  noApp,
		check: func(a *appCall) error { return api.ValidateDomain(a.args[0]) },
		run: func(a *appCall, c *client.Client) error {
			d, err := c.CreateDomain(a.ctx, api.DomainInfo{Name: a.args[0], Org: org})
			if err != nil {
				return err
			}
			scope := "shared"
			if d.Org != "" {
				scope = "private to org " + d.Org
			}
			fmt.Fprintf(m.Stdout, "Registered %s (%s) — map routes under it with strata routes map APP HOST.%s\n", d.Name, scope, d.Name)
			return nil
		},
	})
	create.Flags().StringVar(&org, "org", "", "make the domain private to this org")
	cmd.AddCommand(create, m.appCmd(appSpec{
		use:   "delete NAME",
		short: "Delete a domain (routes under it stay mapped)",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.DeleteDomain(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted domain %s\n", a.args[0])
			return nil
		},
	}))
	return cmd
}
