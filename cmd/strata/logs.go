package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
)

// logTimeFormat is how `strata logs` prints times (local time, milliseconds).
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// formatLogLine formats one envelope as "time source line".
func formatLogLine(w io.Writer, e api.LogEnvelope) error {
	_, err := fmt.Fprintf(w, "%s %s %s\n", e.Time.Local().Format(logTimeFormat), e.Source, e.Line)
	return err
}

func (m *Main) logsCommand() *cobra.Command {
	var follow bool
	var recent int
	var source string
	cmd := m.appCmd(appSpec{
		use:   "logs NAME",
		short: "Show an app's recent logs; -f follows them live",
		check: func(*appCall) error {
			switch source {
			case "", "app", "staging", "router", "strata":
			default:
				return api.Errorf(api.EInvalid, "unknown log source %q — use app, staging, router or strata", source)
			}
			if recent < 0 {
				return api.Errorf(api.EInvalid, "--recent must not be negative")
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			err := c.Logs(a.ctx, a.name, client.LogOptions{Recent: recent, Source: source, Follow: follow},
				func(e api.LogEnvelope) error { return formatLogLine(m.Stdout, e) })
			if follow && errors.Is(err, context.Canceled) {
				return nil // Ctrl-C ends a follow normally
			}
			return err
		},
	})
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow live logs until interrupted")
	cmd.Flags().IntVar(&recent, "recent", 0, "number of recent lines to show (--recent alone: 100)")
	cmd.Flags().Lookup("recent").NoOptDefVal = "100"
	cmd.Flags().StringVar(&source, "source", "", "only lines from app, staging, router or strata")
	return cmd
}
