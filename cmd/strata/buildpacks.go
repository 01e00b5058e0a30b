package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/api/client"
)

func (m *Main) buildpacksCommand() *cobra.Command {
	cmd := m.appCmd(appSpec{
		use:   "buildpacks",
		short: "List the registered classic buildpacks in detection order",
		args:  cobra.NoArgs,
		name:  noApp,
		json:  true,
		run: func(a *appCall, c *client.Client) error {
			bps, err := c.Buildpacks(a.ctx)
			if err != nil {
				return err
			}
			return a.print(bps, func() error {
				t := newTable(m.Stdout, "POSITION", "NAME", "UPDATED")
				for _, b := range bps {
					t.row(fmt.Sprint(b.Position), b.Name, b.UpdatedAt.Local().Format("2006-01-02 15:04"))
				}
				if len(bps) == 0 {
					fmt.Fprintln(m.Stdout, "No buildpacks registered: builds use the built-in ones (go, nodejs, python, static, procfile)")
					return nil
				}
				return t.flush()
			})
		},
	})
	cmd.AddCommand(m.putBuildpackCommand(true), m.putBuildpackCommand(false), m.appCmd(appSpec{
		use:   "delete NAME",
		short: "Delete a registered buildpack (admin)",
		name:  noApp,
		run: func(a *appCall, c *client.Client) error {
			if err := c.DeleteBuildpack(a.ctx, a.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Deleted buildpack %s\n", a.args[0])
			return nil
		},
	}))
	return cmd
}

func (m *Main) putBuildpackCommand(create bool) *cobra.Command {
	var position int
	verb, short := "update", "Replace a registered buildpack or move it (admin)"
	if create {
		verb, short = "create", "Register a classic buildpack from its directory, a .zip or a .tgz (admin); it is detected before the built-in ones"
	}
	cmd := m.appCmd(appSpec{
		use:   verb + " NAME DIR|ZIP|TGZ [--position N]",
		short: short,
		args:  cobra.ExactArgs(2),
		name:  noApp,
		check: func(a *appCall) error {
			if position < 0 {
				return api.Errorf(api.EInvalid, "--position is 1 or more — 1 is tried first")
			}
			return api.ValidateBuildpackName(a.args[0])
		},
		run: func(a *appCall, c *client.Client) error {
			tgz, err := m.buildpackArchive(a, a.args[1])
			if err != nil {
				return err
			}
			defer os.Remove(tgz.Name())
			defer tgz.Close()
			st, err := tgz.Stat()
			if err != nil {
				return err
			}
			info, err := c.PutBuildpack(a.ctx, a.args[0], position, tgz, st.Size(), create)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "Buildpack %s is number %d in detection\n", info.Name, info.Position)
			return nil
		},
	})
	cmd.Flags().IntVar(&position, "position", 0, "place in detection, 1 first (default: last, or where it was)")
	return cmd
}

// buildpackArchive returns a temporary gzip tar of a buildpack given as a
// directory, a .zip or a .tgz/.tar.gz, rewound.
func (m *Main) buildpackArchive(a *appCall, src string) (*os.File, error) {
	p := m.path(src)
	st, err := os.Stat(p)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "cannot read %s: %v — give the buildpack's directory, a .zip or a .tgz", src, err)
	}
	out, err := os.CreateTemp("", "strata-buildpack-*.tgz")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		out.Close()
		os.Remove(out.Name())
		return nil, err
	}
	switch lower := strings.ToLower(src); {
	case st.IsDir():
		err = archive.Pack(a.ctx, out, p, archive.PackOptions{})
	case strings.HasSuffix(lower, ".zip"):
		err = zipToTgz(p, out)
	case strings.HasSuffix(lower, ".tgz"), strings.HasSuffix(lower, ".tar.gz"):
		var in *os.File
		if in, err = os.Open(p); err == nil {
			_, err = io.Copy(out, in)
			in.Close()
		}
	default:
		err = api.Errorf(api.EInvalid, "%s is not a directory, .zip or .tgz", src)
	}
	if err != nil {
		return fail(err)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return out, nil
}

// zipToTgz rewrites a zip archive as a gzip tar, keeping file modes (the
// scripts' executable bits).
func zipToTgz(path string, w io.Writer) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return api.Errorf(api.EInvalid, "%s is not a zip archive: %v", path, err)
	}
	defer zr.Close()
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range zr.File {
		mode := f.Mode()
		hdr := &tar.Header{Name: f.Name, Mode: int64(mode.Perm()), ModTime: f.Modified, Typeflag: tar.TypeReg, Size: int64(f.UncompressedSize64)}
		if mode.IsDir() || strings.HasSuffix(f.Name, "/") {
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		} else if !mode.IsRegular() {
			continue // links and devices have no place in a buildpack
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			rc, err := f.Open()
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, rc, hdr.Size)
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
