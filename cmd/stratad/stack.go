package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/strata-paas/strata/deploy/driver/docker"
)

const stackUsage = `Usage:
  stratad stack build [flags]   build the stack image containers run on (cached by content)

Run "stratad stack build -h" for the flags.
`

// runStack is `stratad stack`.
func runStack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, stackUsage)
			return nil
		}
		fmt.Fprint(stderr, stackUsage)
		return errUsage
	}
	def := docker.DefaultStackRecipe()
	fs := newFlagSet("stack build", stderr)
	img := fs.String("image", def.Image, "the stack image's tag")
	suite := fs.String("suite", def.Suite, "Debian suite")
	include := fs.String("include", strings.Join(def.Include, ","), "Debian packages to add to the minbase variant, comma-separated")
	mirror := fs.String("mirror", "", "Debian mirror URL (default: the host's apt sources)")
	work := fs.String("work-dir", os.TempDir(), "where the root file system tarball is written while building")
	dockerHost := fs.String("docker-host", "", "Docker engine address (default: DOCKER_HOST or the local socket)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	r := docker.StackRecipe{Image: *img, Suite: *suite, Variant: def.Variant, Mirror: *mirror}
	for p := range strings.SplitSeq(*include, ",") {
		if p = strings.TrimSpace(p); p != "" {
			r.Include = append(r.Include, p)
		}
	}
	_, err := docker.BuildStack(ctx, *dockerHost, r, *work, stdout)
	return err
}
