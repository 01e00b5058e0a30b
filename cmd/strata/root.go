package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// Main is one run of the CLI. Tests fill it with their own streams,
// environment and directory.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Dir is the working directory for relative paths and git ("" = the process's).
	Dir string
	// Executable returns the path of the strata binary (for git's credential helper).
	Executable func() (string, error)
	Version    string
	Now        func() time.Time

	apiFlag string // --api
	started bool   // a command's RunE began: errors are not usage errors
}

// NewMain returns a Main wired to the process.
func NewMain() *Main {
	return &Main{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, Executable: os.Executable, Version: version, Now: time.Now,
	}
}

// Run runs the command line args and returns the exit code: 0, 1 for
// failures, 2 for usage errors.
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if !m.started {
		msg, more, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
		fmt.Fprintf(m.Stderr, "error: %s — run strata --help for usage\n", msg)
		if more = strings.TrimSpace(more); more != "" {
			fmt.Fprintln(m.Stderr, more)
		}
		return 2
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.msg != "" {
			fmt.Fprintln(m.Stderr, ec.msg)
		}
		return ec.code
	}
	fmt.Fprintln(m.Stderr, "error: "+errorLine(err))
	return 1
}

// errorLine formats err as "<what happened> — <what to do>".
func errorLine(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted — run the command again to retry"
	}
	var ae *api.Error
	msg := err.Error()
	code := api.EInternal
	if errors.As(err, &ae) {
		code = ae.Code
		if ae.Code == api.EBuildFailed && !strings.HasPrefix(ae.Message, "build failed") {
			msg = "build failed: " + msg
		}
	}
	if strings.Contains(msg, " — ") {
		return msg
	}
	return msg + " — " + hintFor(code)
}

// hintFor says what to do about an error with code but no advice.
func hintFor(code string) string {
	switch code {
	case api.EInvalid:
		return "check the arguments (strata help)"
	case api.EUnauthorized:
		return "run strata login --api URL --username NAME (or --token-file FILE)"
	case api.EForbidden:
		return "ask an org manager or an admin for the role it needs"
	case api.ENotFound:
		return "check the name with strata apps"
	case api.EConflict:
		return "check the current state with strata apps"
	case api.EBuildFailed:
		return "fix the errors in the build output above and push again"
	case api.EQuota:
		return "see strata quotas"
	case api.ETimeout:
		return "check strata app NAME and strata logs NAME"
	case api.EUnavailable:
		return "check that stratad is running and try again"
	case api.EUnsupported:
		return "this is not built yet"
	}
	return "this looks like a bug; see the stratad log"
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata: push code, get a running app",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			m.started = true
			return nil
		},
	}
	root.SetIn(m.Stdin)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.PersistentFlags().StringVar(&m.apiFlag, "api", "", "Strata API address (overrides STRATA_API and the config file)")
	root.AddCommand(
		m.loginCommand(),
		m.appsCommand(),
		m.appCommand(),
		m.pushCommand(),
		m.gitRemoteCommand(),
		m.gitCredentialCommand(),
		m.logsCommand(),
		m.releasesCommand(),
		m.rollbackCommand(),
		m.envCommand(),
		m.scaleCommand(),
		m.stateCommand("start", api.AppStarted),
		m.stateCommand("stop", api.AppStopped),
		m.restartCommand(),
		m.eventsCommand(),
		m.nodesCommand(),
		m.spacesCommand(),
		m.orgsCommand(),
		m.runCommand(),
		m.healthCheckCommand(),
		m.certsCommand(),
		m.routesCommand(),
		m.targetCommand(),
		m.logoutCommand(),
		m.passwdCommand(),
		m.tokensCommand(),
		m.usersCommand(),
		m.quotasCommand(),
		m.buildpacksCommand(),
		m.domainsCommand(),
		m.versionCommand(),
	)
	return root
}

// target returns the API address and token: --api, then STRATA_API, then
// the config file; STRATA_TOKEN, then the config file.
func (m *Main) target() (apiURL, token string, err error) {
	_, cfg, err := m.config()
	if err != nil {
		return "", "", err
	}
	apiURL = firstNonEmpty(m.apiFlag, m.Getenv("STRATA_API"), cfg.API)
	token = firstNonEmpty(m.Getenv("STRATA_TOKEN"), cfg.Token)
	if apiURL == "" {
		return "", "", api.Errorf(api.EInvalid, "no Strata API is configured — run strata login --api URL --token-file FILE")
	}
	apiURL, err = normalizeAPI(apiURL)
	return apiURL, token, err
}

// client returns an API client for the configured target.
func (m *Main) client() (*client.Client, error) {
	apiURL, token, err := m.target()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, api.Errorf(api.EUnauthorized, "no API token is configured — run strata login --api %s --username NAME (or --token-file FILE)", apiURL)
	}
	t, err := m.orgSpace()
	if err != nil {
		return nil, err
	}
	return client.New(apiURL, token).WithTarget(t), nil
}

// orgSpace returns the org and space app commands act in: STRATA_ORG and
// STRATA_SPACE, then the config file (strata target).
func (m *Main) orgSpace() (api.Target, error) {
	_, cfg, err := m.config()
	if err != nil {
		return api.Target{}, err
	}
	t := api.Target{Org: firstNonEmpty(m.Getenv("STRATA_ORG"), cfg.Org), Space: firstNonEmpty(m.Getenv("STRATA_SPACE"), cfg.Space)}
	return t, t.Validate()
}

// normalizeAPI adds http:// to a bare host:port and checks the URL.
func normalizeAPI(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", api.Errorf(api.EInvalid, "API address %q is not an http(s) URL — use e.g. http://127.0.0.1:7070", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
