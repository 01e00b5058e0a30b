package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) routesCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "routes",
		short: "List routes and the apps they are mapped to",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			routes, err := c.Routes(a.ctx)
			if err != nil {
				return err
			}
			return a.print(routes, func() error {
				t := newTable(m.Stdout, "HOST", "PATH", "APP", "URL")
				for _, r := range routes {
					t.row(r.Host, orDash(r.Path), r.App, r.URL)
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.mapRouteCommand(), m.unmapRouteCommand())
	return cmd
}

// parseRouteArg reads HOST[.DOMAIN][/PATH]: a bare name is under the
// platform's domain; a full host may be under any domain of strata domains
// (the controller decides whether the space may use it).
func parseRouteArg(ctx context.Context, c *client.Client, s string) (api.RouteRequest, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return api.RouteRequest{}, err
	}
	domains := []string{info.Domain}
	if ds, err := c.Domains(ctx); err == nil {
		for _, d := range ds {
			domains = append(domains, d.Name)
		}
	}
	return api.ParseRouteIn(s, domains)
}

func (m *Main) mapRouteCommand() *cobra.Command {
	return m.routeChangeCommand("map", "Map a route to an app (running instances serve it without a restart)",
		func(ctx context.Context, c *client.Client, name string, req api.RouteRequest) (string, error) {
			r, err := c.MapRoute(ctx, name, req)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("Mapped %s to %s: %s", req, name, r.URL), nil
		})
}

func (m *Main) unmapRouteCommand() *cobra.Command {
	return m.routeChangeCommand("unmap", "Unmap a route from an app",
		func(ctx context.Context, c *client.Client, name string, req api.RouteRequest) (string, error) {
			if err := c.UnmapRoute(ctx, name, req); err != nil {
				return "", err
			}
			return fmt.Sprintf("Unmapped %s from %s", req, name), nil
		})
}

// routeChangeCommand is `strata routes VERB NAME ROUTE`: it parses the app
// name and route, runs change and prints its line.
func (m *Main) routeChangeCommand(verb, short string, change func(context.Context, *client.Client, string, api.RouteRequest) (string, error)) *cobra.Command {
	return m.appCmd(appSpec{
		use:   verb + " NAME HOST[.DOMAIN][/PATH]",
		short: short,
		args:  cobra.ExactArgs(2),
		run: func(a *appCall, c *client.Client) error {
			req, err := parseRouteArg(a.ctx, c, a.args[1])
			if err != nil {
				return err
			}
			line, err := change(a.ctx, c, a.name, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, line)
			return nil
		},
	})
}
