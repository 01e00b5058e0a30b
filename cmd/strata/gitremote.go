package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// gitRemoteName is the remote `strata git-remote` adds.
const gitRemoteName = "strata"

func (m *Main) gitRemoteCommand() *cobra.Command {
	return m.appCmd(appSpec{
		use:   "git-remote NAME",
		short: "Add a git remote \"strata\" for the app so that git push strata main deploys it",
		name:  newAppArg,
		check: func(a *appCall) error {
			if _, err := exec.LookPath("git"); err != nil {
				return api.Errorf(api.EInvalid, "git is not installed — install git first")
			}
			if _, err := m.git(a.ctx, "rev-parse", "--git-dir"); err != nil {
				return api.Errorf(api.EInvalid, "this directory is not in a git repository — run git init first")
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			ctx, name, apiURL := a.ctx, a.name, c.BaseURL()
			if _, err := c.App(ctx, name); api.ErrorCode(err) == api.ENotFound {
				if _, err := c.CreateApp(ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "Created app %s\n", name)
			} else if err != nil {
				return err
			}

			remoteURL := apiURL + "/git/" + name + ".git"
			if t, err := m.orgSpace(); err != nil {
				return err
			} else if t.Org != "" || t.Space != "" {
				// Pushes land in the target space, whoever pushes.
				remoteURL = apiURL + "/git/" + firstNonEmpty(t.Org, "default") + "/" + firstNonEmpty(t.Space, "default") + "/" + name + ".git"
			}
			verb := "Added"
			if _, err := m.git(ctx, "remote", "get-url", gitRemoteName); err == nil {
				verb = "Updated"
				_, err = m.git(ctx, "remote", "set-url", gitRemoteName, remoteURL)
				if err != nil {
					return err
				}
			} else if _, err := m.git(ctx, "remote", "add", gitRemoteName, remoteURL); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%s git remote %s → %s\n", verb, gitRemoteName, remoteURL)

			exe, err := m.Executable()
			if err != nil {
				return api.Errorf(api.EInternal, "cannot find the strata binary: %v — run strata by its full path", err)
			}
			// An empty helper first resets helpers inherited from the global
			// config, so a stale stored password never wins over the token.
			key := "credential." + apiURL
			_, _ = m.git(ctx, "config", "--local", "--unset-all", key+".helper")
			steps := [][]string{
				{"config", "--local", "--add", key + ".helper", ""},
				{"config", "--local", "--add", key + ".helper", "!" + shellQuote(exe) + " git-credential"},
				{"config", "--local", key + ".useHttpPath", "false"},
			}
			for _, s := range steps {
				if _, err := m.git(ctx, s...); err != nil {
					return err
				}
			}
			fmt.Fprintf(m.Stdout, "Configured git to send your Strata token to %s (credential helper: strata git-credential)\n", apiURL)
			fmt.Fprintln(m.Stdout, "Next: git push strata main")
			return nil
		},
	})
}

// git runs git with argv only (never a shell) in m.Dir.
func (m *Main) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = m.Dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", api.Errorf(api.EInvalid, "git %s failed: %s — fix the repository and run the command again",
				args[0], strings.TrimSpace(errb.String()))
		}
		return "", api.Errorf(api.EInvalid, "cannot run git: %v — check that git is installed", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// shellQuote quotes s for POSIX sh: git runs "!…" helpers through a shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// gitCredentialCommand implements git's credential helper protocol: for
// "get" it answers the Strata token as the password; "store" and "erase"
// are ignored.
func (m *Main) gitCredentialCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "git-credential get|store|erase",
		Short:  "git credential helper that answers the Strata API token",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Read the request (key=value lines up to a blank line or EOF).
			sc := bufio.NewScanner(m.Stdin)
			for sc.Scan() && sc.Text() != "" {
			}
			if args[0] != "get" {
				return nil
			}
			_, token, err := m.target()
			if err != nil {
				return err
			}
			if token == "" {
				return api.Errorf(api.EUnauthorized, "no Strata API token is configured — run strata login --api URL --token-file FILE")
			}
			if strings.ContainsAny(token, "\n\x00") {
				return api.Errorf(api.EInvalid, "the saved token contains a newline — run strata login again")
			}
			fmt.Fprintf(m.Stdout, "username=strata\npassword=%s\n", token)
			return nil
		},
	}
}
