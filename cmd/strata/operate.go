package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// exitCodeError ends the CLI with code (and msg on stderr when set): how
// `strata run` passes on the task's exit code.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func (m *Main) runCommand() *cobra.Command {
	var argv []string
	cmd := m.appCmd(appSpec{
		use:   "run NAME -- COMMAND [ARG…]",
		short: "Run a one-off command in the app's current release and exit with its exit code",
		long: "Run a one-off command as its own instance of the app's current release (its droplet and\n" +
			"config vars), not routed and not restarted, streaming its output. One argument is run as a\n" +
			"shell command line (strata run web -- 'echo $GREETING'); several are quoted so each stays\n" +
			"one argument (strata run web -- sh -c 'exit 3').",
		args: cobra.MinimumNArgs(2),
		check: func(a *appCall) error {
			argv = a.args[1:]
			if argv[0] == "--" { // flags stop at NAME, so "--" reaches us
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return api.Errorf(api.EInvalid, "no command to run — write strata run %s -- COMMAND", a.name)
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			exit, err := c.RunTask(a.ctx, a.name, api.TaskRequest{Command: taskCommand(argv)}, func(ev api.TaskEvent) {
				switch {
				case ev.Type == api.TaskEventStarted:
					fmt.Fprintf(m.Stderr, "Running task %s (%s)\n", ev.TaskID, ev.Line)
				case ev.Stream == "stderr":
					fmt.Fprintln(m.Stderr, ev.Line)
				default:
					fmt.Fprintln(m.Stdout, ev.Line)
				}
			})
			if err != nil {
				return err
			}
			if exit.ExitCode == nil {
				return &exitCodeError{code: 1, msg: "error: the task ended without an exit code: " + exit.Reason}
			}
			if *exit.ExitCode != 0 {
				return &exitCodeError{code: *exit.ExitCode}
			}
			return nil
		},
	})
	cmd.Flags().SetInterspersed(false) // flags after NAME belong to the command
	return cmd
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// taskCommand turns run's arguments into the /bin/sh -c command line: one
// argument as it is, several each quoted as needed.
func taskCommand(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	q := make([]string, len(args))
	for i, a := range args {
		if shellSafe.MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func (m *Main) healthCheckCommand() *cobra.Command {
	var req api.HealthCheckRequest
	cmd := m.appCmd(appSpec{
		use:   "health-check NAME --type port|http|process [--path /healthz] [--timeout SECONDS] [--interval SECONDS] [--process TYPE]",
		short: "Set how an app's instances are health-checked (applies from the next restart or release)",
		run: func(a *appCall, c *client.Client) error {
			if req.Type == api.HealthHTTP && req.Path == "" {
				req.Path = "/"
			}
			p, err := c.SetHealthCheck(a.ctx, a.name, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%s: %s — it applies to instances started from now on (strata restart %s)\n", p.Type, strings.TrimPrefix(healthLabel(*p), ", "), a.name)
			return nil
		},
	})
	cmd.Flags().StringVar(&req.Type, "type", "", "port (web default), http or process")
	cmd.Flags().StringVar(&req.Path, "path", "", "path of an http check (default /)")
	cmd.Flags().IntVar(&req.Timeout, "timeout", 0, "start-up timeout in seconds (0 = the default, 60)")
	cmd.Flags().IntVar(&req.Interval, "interval", 0, "seconds between checks of a running instance (0 = the default, 1)")
	cmd.Flags().StringVar(&req.Process, "process", api.ProcessWeb, "process type")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// healthLabel describes a process type's health check for `strata app`
// (", health http /healthz, 30s"), or "" for the default.
func healthLabel(p api.Process) string {
	if p.HealthCheck == "" && p.HealthCheckTimeout == 0 && p.HealthCheckInterval == 0 {
		return ""
	}
	t := p.HealthCheck
	if t == "" {
		t = "default"
	}
	s := ", health " + t
	if p.HealthCheckPath != "" {
		s += " " + p.HealthCheckPath
	}
	if p.HealthCheckTimeout > 0 {
		s += fmt.Sprintf(", %ds start-up", p.HealthCheckTimeout)
	}
	if p.HealthCheckInterval > 0 {
		s += fmt.Sprintf(", every %ds", p.HealthCheckInterval)
	}
	return s
}

// usageLabels formats an instance's CPU and memory ("-" when unknown).
func usageLabels(in *api.Instance) (cpu, mem string) {
	cpu, mem = "-", "-"
	if in.MemoryBytes > 0 {
		cpu = fmt.Sprintf("%.1f%%", in.CPUPercent)
		mem = fmt.Sprintf("%.1fM", float64(in.MemoryBytes)/(1<<20))
	}
	return cpu, mem
}
