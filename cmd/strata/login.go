package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) loginCommand() *cobra.Command {
	var token, tokenFile, username string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login --api URL (--username U [--password-stdin] | --token T | --token-file F)",
		Short: "Log in with a user name and password, or a token, and save the API address and token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cfg, err := m.config()
			if err != nil {
				return err
			}
			apiURL := firstNonEmpty(m.apiFlag, m.Getenv("STRATA_API"), cfg.API)
			if apiURL == "" {
				return api.Errorf(api.EInvalid, "no API address given — pass --api URL (stratad prints it on start)")
			}
			if apiURL, err = normalizeAPI(apiURL); err != nil {
				return err
			}
			switch {
			case username != "" && (token != "" || tokenFile != ""):
				return api.Errorf(api.EInvalid, "--username and a token given — log in with one of them")
			case username != "":
				if token, err = m.passwordLogin(cmd, apiURL, username); err != nil {
					return err
				}
			case token != "" && tokenFile != "":
				return api.Errorf(api.EInvalid, "both --token and --token-file given — pass only one")
			case tokenFile != "":
				b, err := os.ReadFile(m.path(tokenFile))
				if err != nil {
					return api.Errorf(api.EInvalid, "cannot read the token file: %v — check the path (stratad prints it on start)", err)
				}
				token = strings.TrimSpace(string(b))
			case token == "":
				return api.Errorf(api.EInvalid, "no credentials given — pass --username NAME, --token-file FILE or --token TOKEN")
			}
			if token == "" {
				return api.Errorf(api.EInvalid, "the token is empty — check --token or --token-file")
			}
			who, err := client.New(apiURL, token).Whoami(cmd.Context())
			if err != nil {
				return err
			}
			if err := saveConfig(path, Config{API: apiURL, Token: token}); err != nil {
				return err
			}
			role := ""
			if who.Admin {
				role = " (admin)"
			}
			fmt.Fprintf(m.Stdout, "Logged in to %s as %s%s\n", apiURL, who.Name, role)
			fmt.Fprintf(m.Stdout, "Saved to %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "API token")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the API token (e.g. <data>/admin.token)")
	cmd.Flags().StringVar(&username, "username", "", "user name; the password is prompted for, or read from stdin")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (the default when stdin is not a terminal)")
	return cmd
}

// path resolves p against m.Dir.
func (m *Main) path(p string) string {
	if filepath.IsAbs(p) || m.Dir == "" {
		return p
	}
	return filepath.Join(m.Dir, p)
}
