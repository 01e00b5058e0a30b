package main

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

// TestAppCmdOrder checks the order of appCmd's steps: the app's name, then
// the checks that need no API, then the target and its token.
func TestAppCmdOrder(t *testing.T) {
	noTarget := newCLI(t)
	noToken := newCLI(t)
	noToken.env["STRATA_API"] = noToken.url
	for _, tc := range []struct {
		name string
		c    *cli
		args []string
		want string
	}{
		{"name before target", noTarget, []string{"app", "Bad"}, "may only contain"},
		{"reserved name before target", noTarget, []string{"apps", "create", "api"}, "reserved"},
		{"check before target", noTarget, []string{"rollback", "hello", "x"}, "is not a version"},
		{"flags checked before target", noTarget, []string{"scale", "hello"}, "nothing to scale"},
		{"no target", noTarget, []string{"app", "hello"}, "no Strata API is configured"},
		{"no target for a list", noTarget, []string{"apps"}, "no Strata API is configured"},
		{"check before token", noToken, []string{"env", "set", "hello", "NOEQUALS"}, "not NAME=VALUE"},
		{"no token", noToken, []string{"events", "hello", "--json"}, "no API token is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := tc.c.run(tc.args...)
			wantError(t, errs, code, 1, tc.want)
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
	c := newCLI(t).asUser()
	c.mustRun("apps", "create", "hello")
	for _, args := range [][]string{{"events", "nope", "--json"}, {"releases", "nope", "--json"}} {
		out, errs, code := c.run(args...)
		wantError(t, errs, code, 1, "not found")
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", args, out)
		}
	}
}

func TestPrintJSONNilList(t *testing.T) {
	var b strings.Builder
	if err := printJSON(&b, []*api.Event(nil)); err != nil || b.String() != "[]\n" {
		t.Errorf("printJSON(nil list) wrote %q, %v; want []", b.String(), err)
	}
	b.Reset()
	if err := printJSON(&b, map[string]string(nil)); err != nil || b.String() != "null\n" {
		t.Errorf("printJSON(nil map) wrote %q, %v; want null (only lists change)", b.String(), err)
	}
}
