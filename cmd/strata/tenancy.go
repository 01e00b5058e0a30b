package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// readPassword reads a password: without echo from a terminal (after
// prompt), else the first line of stdin (--password-stdin, scripts).
func (m *Main) readPassword(prompt string) (string, error) {
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(m.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(m.Stderr)
		if err != nil {
			return "", api.Errorf(api.EInvalid, "cannot read the password: %v", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(m.Stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", api.Errorf(api.EInvalid, "cannot read the password from stdin: %v", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", api.Errorf(api.EInvalid, "no password on stdin — pipe it in, e.g. echo \"$PW\" | strata … --password-stdin")
	}
	return pw, nil
}

// passwordLogin logs in with a user name and the password read from stdin
// and returns the token.
func (m *Main) passwordLogin(cmd *cobra.Command, apiURL, username string) (string, error) {
	if err := api.ValidateName("user", username); err != nil {
		return "", err
	}
	pw, err := m.readPassword("Password: ")
	if err != nil {
		return "", err
	}
	res, err := client.New(apiURL, "").Login(cmd.Context(), api.LoginRequest{Username: username, Password: pw})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(m.Stdout, "Token expires %s\n", res.ExpiresAt.Local().Format("2006-01-02 15:04"))
	return res.Token, nil
}

func (m *Main) targetCommand() *cobra.Command {
	var org, space string
	cmd := &cobra.Command{
		Use:   "target [--org O] [--space S]",
		Short: "Show or set the org and space app commands act in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cfg, err := m.config()
			if err != nil {
				return err
			}
			if org != "" || space != "" {
				if err := (api.Target{Org: org, Space: space}).Validate(); err != nil {
					return err
				}
				t := api.Target{Org: firstNonEmpty(org, cfg.Org), Space: space}
				if org != "" && space == "" && org != cfg.Org {
					t.Space = "" // a new org starts in its default space
				} else if space == "" {
					t.Space = cfg.Space
				}
				c, err := m.client()
				if err != nil {
					return err
				}
				if err := checkTarget(cmd, c, t); err != nil {
					return err
				}
				cfg.Org, cfg.Space = t.Org, t.Space
				if err := saveConfig(path, cfg); err != nil {
					return err
				}
			}
			t, err := m.orgSpace()
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "API:   %s\norg:   %s\nspace: %s\n", firstNonEmpty(m.apiFlag, m.Getenv("STRATA_API"), cfg.API),
				firstNonEmpty(t.Org, "default"), firstNonEmpty(t.Space, "default"))
			return nil
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "org to act in")
	cmd.Flags().StringVar(&space, "space", "", "space to act in (of the org)")
	return cmd
}

// checkTarget asks the API whether the caller may see space t.
func checkTarget(cmd *cobra.Command, c *client.Client, t api.Target) error {
	org := firstNonEmpty(t.Org, "default")
	spaces, err := c.OrgSpaces(cmd.Context(), org)
	if err != nil {
		return err
	}
	want := firstNonEmpty(t.Space, "default")
	for _, sp := range spaces {
		if sp.Name == want {
			return nil
		}
	}
	return api.Errorf(api.ENotFound, "space %s/%s not found — see strata spaces --org %s", org, want, org)
}

func (m *Main) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cfg, err := m.config()
			if err != nil {
				return err
			}
			if cfg.Token == "" {
				return api.Errorf(api.EInvalid, "not logged in — nothing to do")
			}
			c, err := m.client()
			if err != nil {
				return err
			}
			if err := c.Logout(cmd.Context()); err != nil && api.ErrorCode(err) != api.EUnauthorized {
				return err
			}
			cfg.Token = ""
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, "Logged out")
			return nil
		},
	}
}

func (m *Main) passwdCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "passwd",
		short: "Change your password (reads the current one, then the new one twice)",
		args:  cobra.NoArgs,
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			old, err := m.readPassword("Current password (empty if you have none): ")
			if err != nil && !strings.Contains(err.Error(), "no password on stdin") {
				return err
			}
			pw, err := m.readPassword("New password: ")
			if err != nil {
				return err
			}
			if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				again, err := m.readPassword("New password again: ")
				if err != nil {
					return err
				}
				if again != pw {
					return api.Errorf(api.EInvalid, "the two new passwords differ — run strata passwd again")
				}
			}
			if err := c.ChangePassword(a.ctx, api.PasswordChange{Old: old, New: pw}); err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, "Password changed")
			return nil
		},
	})
}

func (m *Main) tokensCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "tokens",
		short: "List your API tokens (IDs, never tokens)",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			ts, err := c.Tokens(a.ctx)
			if err != nil {
				return err
			}
			return a.print(ts, func() error {
				t := newTable(m.Stdout, "ID", "CREATED", "EXPIRES", "DESCRIPTION")
				for _, tok := range ts {
					exp := "never"
					if tok.ExpiresAt != nil {
						exp = tok.ExpiresAt.Local().Format("2006-01-02 15:04")
					}
					id := tok.ID
					if tok.Current {
						id += " (this one)"
					}
					t.row(id, tok.CreatedAt.Local().Format("2006-01-02 15:04"), exp, tok.Description)
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.appCmd(appSpec{
		use:   "revoke ID",
		short: "Revoke one of your tokens",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.RevokeToken(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Revoked token %s\n", a.args[0])
			return nil
		},
	}))
	return cmd
}

func (m *Main) usersCommand() *cobra.Command {
	var org string
	cmd := m.appCmd(appSpec{
		use:   "users [--org O]",
		short: "List users (admin), or with --org the members of an org and their roles",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			if org != "" {
				ms, err := c.Members(a.ctx, org)
				if err != nil {
					return err
				}
				return a.print(ms, func() error {
					t := newTable(m.Stdout, "USER", "ROLE", "SPACE")
					for _, mem := range ms {
						t.row(mem.User, string(mem.Role), firstNonEmpty(mem.Space, "-"))
					}
					return t.flush()
				})
			}
			us, err := c.Users(a.ctx)
			if err != nil {
				return err
			}
			return a.print(us, func() error {
				t := newTable(m.Stdout, "NAME", "ADMIN", "CREATED")
				for _, u := range us {
					t.row(u.Name, fmt.Sprint(u.Admin), u.CreatedAt.Local().Format("2006-01-02 15:04"))
				}
				return t.flush()
			})
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "list the members of this org")

	var admin, fromStdin bool
	create := m.appCmd(appSpec{
		use:   "create NAME [--admin] [--password-stdin]",
		short: "Create a user (admin); without --password-stdin a password is generated and printed once",
		name:  noApp,
		check: func(a *appCall) error { return api.ValidateName("user", a.args[0]) },
		run: func(a *appCall, c *client.Client) error {
			req := api.UserRequest{Name: a.args[0], Admin: admin}
			if fromStdin {
				pw, err := m.readPassword("Password: ")
				if err != nil {
					return err
				}
				req.Password = pw
			}
			u, err := c.CreateUser(a.ctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Created user %s\n", u.User.Name)
			if u.GeneratedPassword != "" {
				fmt.Fprintf(m.Stdout, "Password: %s\n(shown once — they log in with strata login --username %s and change it with strata passwd)\n", u.GeneratedPassword, u.User.Name)
			}
			return nil
		},
	})
	create.Flags().BoolVar(&admin, "admin", false, "make the user an admin")
	create.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin")

	del := m.appCmd(appSpec{
		use:   "delete NAME",
		short: "Delete a user with their tokens and roles (admin)",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.DeleteUser(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted user %s\n", a.args[0])
			return nil
		},
	})
	cmd.AddCommand(create, del, m.roleCommand("set-role", true), m.roleCommand("unset-role", false))
	return cmd
}

func (m *Main) roleCommand(use string, set bool) *cobra.Command {
	var org, space string
	verb := "Give a user"
	if !set {
		verb = "Take from a user"
	}
	cmd := m.appCmd(appSpec{
		use:   use + " USER ROLE --org O [--space S]",
		short: verb + " a role: org-manager, org-auditor (with --org), space-manager, space-developer, space-auditor (with --space)",
		args:  cobra.ExactArgs(2),
		name:  noApp,
		check: func(a *appCall) error {
			if org == "" {
				return api.Errorf(api.EInvalid, "which org? pass --org O")
			}
			_, err := api.ParseRole(a.args[1])
			return err
		},
		run: func(a *appCall, c *client.Client) error {
			req := api.RoleRequest{User: a.args[0], Role: api.Role(a.args[1]), Org: org, Space: space}
			where := org
			if space != "" {
				where += "/" + space
			}
			if set {
				if err := c.SetRole(a.ctx, req); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "%s is now %s in %s\n", req.User, req.Role, where)
				return nil
			}
			if err := c.UnsetRole(a.ctx, req); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%s is no longer %s in %s\n", req.User, req.Role, where)
			return nil
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "the org")
	cmd.Flags().StringVar(&space, "space", "", "the space (for space roles)")
	return cmd
}

// orgCreateCommand and the ones below extend `strata orgs` and `strata spaces`.
func (m *Main) orgCreateCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "create NAME",
		short: "Create an org (admin)",
		name:  noApp,
		check: func(a *appCall) error { return api.ValidateName("org", a.args[0]) },
		run: func(a *appCall, c *client.Client) error {
			if _, err := c.CreateOrg(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Created org %s — create a space with strata spaces create NAME --org %s\n", a.args[0], a.args[0])
			return nil
		},
	})
}

func (m *Main) orgDeleteCommand() *cobra.Command {
	var recursive bool
	cmd := m.appCmd(appSpec{
		use:   "delete NAME [--recursive]",
		short: "Delete an org (admin); --recursive also deletes its spaces and their apps",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.DeleteOrg(a.ctx, a.args[0], recursive); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted org %s\n", a.args[0])
			return nil
		},
	})
	cmd.Flags().BoolVar(&recursive, "recursive", false, "also delete its spaces and their apps")
	return cmd
}

func (m *Main) spaceCreateCommand() *cobra.Command {
	var org string
	cmd := m.appCmd(appSpec{
		use:   "create NAME [--org O]",
		short: "Create a space in an org (org manager)",
		name:  noApp,
		check: func(a *appCall) error { return api.ValidateName("space", a.args[0]) },
		run: func(a *appCall, c *client.Client) error {
			o, err := m.orgOr(org)
			if err != nil {
				return err
			}
			if _, err := c.CreateSpace(a.ctx, o, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Created space %s/%s — act in it with strata target --org %s --space %s\n", o, a.args[0], o, a.args[0])
			return nil
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "the org (default: the target's)")
	return cmd
}

func (m *Main) spaceDeleteCommand() *cobra.Command {
	var org string
	var recursive bool
	cmd := m.appCmd(appSpec{
		use:   "delete NAME [--org O] [--recursive]",
		short: "Delete a space (org manager); --recursive also stops and deletes its apps",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			o, err := m.orgOr(org)
			if err != nil {
				return err
			}
			if err := c.DeleteSpace(a.ctx, o, a.args[0], recursive); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted space %s/%s\n", o, a.args[0])
			return nil
		},
	})
	cmd.Flags().StringVar(&org, "org", "", "the org (default: the target's)")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "also stop and delete its apps")
	return cmd
}

// orgOr returns org, else the target's org, else "default".
func (m *Main) orgOr(org string) (string, error) {
	if org != "" {
		return org, api.ValidateName("org", org)
	}
	t, err := m.orgSpace()
	return firstNonEmpty(t.Org, "default"), err
}
