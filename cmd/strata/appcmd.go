package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// appSpec describes a command about one app, `strata VERB NAME [ARG…]`;
// Main.appCmd builds it. The other commands that call the API (lists,
// nodes, certificates, placement) are built the same way with name noApp.
// What check parses, run reads from variables of the function that builds
// the command, as it reads its flags: Main.Run builds every command afresh.
type appSpec struct {
	use, short, long string
	// args checks the number of arguments (nil: exactly one).
	args cobra.PositionalArgs
	// json adds --json; run prints its result with appCall.print.
	json bool
	// name returns the app's validated name from the arguments (nil:
	// appArg; noApp for a command about no app).
	name func(args []string) (string, error)
	// check checks the other arguments and the flags before the target is
	// read, so a mistake there is reported without asking the API (optional).
	check func(a *appCall) error
	// run does the command with a client of the target.
	run func(a *appCall, c *client.Client) error
}

// appCall is one run of an app command.
type appCall struct {
	ctx  context.Context
	name string         // the app, validated ("" with noApp)
	args []string       // the command's arguments (NAME first when it was given)
	json bool           // --json was given
	cmd  *cobra.Command // the running command, for its flags
	out  io.Writer
}

// print writes v as JSON when --json was given (see printJSON), else calls
// text.
func (a *appCall) print(v any, text func() error) error {
	if a.json {
		return printJSON(a.out, v)
	}
	return text()
}

// appCmd builds the command spec describes. Its steps, in this order: the
// app's name (spec.name), spec.check, the target and its client (the
// errors of Main.client), spec.run.
func (m *Main) appCmd(spec appSpec) *cobra.Command {
	args, name := spec.args, spec.name
	if args == nil {
		args = cobra.ExactArgs(1)
	}
	if name == nil {
		name = appArg
	}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   spec.use,
		Short: spec.short,
		Long:  spec.long,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := &appCall{ctx: cmd.Context(), args: args, json: asJSON, cmd: cmd, out: m.Stdout}
			var err error
			if a.name, err = name(args); err != nil {
				return err
			}
			if spec.check != nil {
				if err := spec.check(a); err != nil {
					return err
				}
			}
			c, err := m.client()
			if err != nil {
				return err
			}
			return spec.run(a, c)
		},
	}
	if spec.json {
		cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	}
	return cmd
}

// appArg validates the app name argument at index 0.
func appArg(args []string) (string, error) {
	return args[0], api.ValidateName("app", args[0])
}

// newAppArg validates the argument at index 0 as the name of an app that
// may be created: names the platform reserves are refused too.
func newAppArg(args []string) (string, error) {
	return args[0], api.ValidateAppName(args[0])
}

// noApp is the name of a command that is about no app: "".
func noApp([]string) (string, error) { return "", nil }
