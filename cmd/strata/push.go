package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/manifest"
)

func (m *Main) pushCommand() *cobra.Command {
	var dir, manifestPath string
	var noWait, noManifest, noCache bool
	var buildpacks []string
	var image, imageFile string
	var abs string       // the directory to push
	var mf *pushManifest // the manifest it carries (nil: none)
	cmd := m.appCmd(appSpec{
		use:   "push [NAME]",
		short: "Upload a directory, build it and run it (creates the app if needed)",
		long: "Upload a directory (honouring .stratignore, else .cfignore, else .gitignore),\n" +
			"build it, wait until its instances are healthy and print its URL.\n" +
			"NAME defaults to the manifest's app, else the directory's name. A manifest\n" +
			"(-f, or strata.yml / manifest.yml in the directory) sets env, instances,\n" +
			"memory, disk, routes, placement, health checks, start commands and\n" +
			"processes; the controller applies it, as for git push. See docs/cli.md.",
		args: cobra.MaximumNArgs(1),
		// The app is NAME, else the manifest's, else the directory's.
		name: func(args []string) (name string, err error) {
			if abs, err = filepath.Abs(m.path(dir)); err != nil {
				return "", api.Errorf(api.EInvalid, "bad directory %q: %v — pass -p DIR", dir, err)
			}
			if st, err := os.Stat(abs); err != nil || !st.IsDir() {
				return "", api.Errorf(api.EInvalid, "%s is not a directory — pass the app's directory with -p DIR", abs)
			}
			if len(args) == 1 {
				name = args[0]
			}
			if manifestPath != "" {
				manifestPath = m.path(manifestPath)
			}
			mf = nil
			if !noManifest {
				if name, mf, err = loadManifest(manifestPath, abs, name); err != nil {
					return "", err
				}
			}
			fromDir := name == ""
			if fromDir {
				name = filepath.Base(abs)
			}
			if err := api.ValidateAppName(name); err != nil {
				if fromDir {
					return "", fmt.Errorf("the directory name is not a valid app name: %w", err)
				}
				return "", err
			}
			return name, nil
		},
		check: func(a *appCall) error {
			if image == "" && imageFile == "" {
				return nil
			}
			switch {
			case image != "" && imageFile != "":
				return api.Errorf(api.EInvalid, "--docker-image and --docker-image-file given — deploy one of them")
			case len(a.args) == 0:
				return api.Errorf(api.EInvalid, "an image deploy needs the app's name — strata push NAME --docker-image IMAGE")
			case len(buildpacks) > 0 || noCache:
				return api.Errorf(api.EInvalid, "an image deploy builds nothing — drop -b and --no-cache")
			}
			return nil
		},
		run: func(a *appCall, c *client.Client) error {
			if image != "" || imageFile != "" {
				return m.pushImage(a.ctx, c, a.name, image, imageFile, !noWait)
			}
			return m.push(a.ctx, c, a.name, abs, pushOptions{wait: !noWait, manifest: mf, ignoreManifest: noManifest, buildpacks: buildpacks, noCache: noCache})
		},
	})
	cmd.Flags().StringVarP(&dir, "path", "p", ".", "directory to push")
	cmd.Flags().StringVarP(&manifestPath, "manifest", "f", "", "manifest file (default: strata.yml or manifest.yml in the directory)")
	cmd.Flags().BoolVar(&noManifest, "no-manifest", false, "ignore any manifest in the directory")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "do not wait for instances to become healthy")
	cmd.Flags().StringArrayVarP(&buildpacks, "buildpack", "b", nil, "buildpack to run (repeat for several, run in order; default: the manifest's, else detection)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "build without the app's build cache (it is kept as it was)")
	cmd.Flags().StringVar(&image, "docker-image", "", "deploy this image (one the nodes' Docker engines have) instead of building the directory")
	cmd.Flags().StringVar(&imageFile, "docker-image-file", "", "deploy this `docker save` tarball instead of building the directory")
	return cmd
}

// pushOptions are the choices of one push.
type pushOptions struct {
	wait           bool
	manifest       *pushManifest // put at the root of the upload in place of the directory's own
	ignoreManifest bool
	buildpacks     []string
	noCache        bool
}

// push packs dir (with the chosen manifest), uploads it and streams the
// deploy, which applies the manifest.
func (m *Main) push(ctx context.Context, c *client.Client, name, dir string, opt pushOptions) error {
	wait := opt.wait
	tty := isTerminal(m.Stderr)
	tmp, err := os.CreateTemp("", "strata-push-*.tar.gz")
	if err != nil {
		return api.Errorf(api.EInvalid, "cannot create a temporary file: %v — check TMPDIR", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	var files int
	var bytes int64
	err = packDir(ctx, tmp, dir, opt.manifest, archive.PackOptions{Ignore: true, Progress: func(f int, b int64) {
		files, bytes = f, b
		if tty {
			fmt.Fprintf(m.Stderr, "\rPacking %d files, %s", f, humanBytes(b))
		}
	}})
	if tty {
		fmt.Fprint(m.Stderr, "\r\033[K")
	}
	if err != nil {
		if api.ErrorCode(err) == api.EInternal && ctx.Err() == nil {
			return api.Errorf(api.EInvalid, "cannot pack %s: %v — check the directory's files and permissions", dir, err)
		}
		return err
	}
	size, err := tmp.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return api.Errorf(api.EInvalid, "cannot read the packed archive: %v — check TMPDIR", err)
	}

	return m.upload(ctx, c, name, tmp, size, fmt.Sprintf("Uploading %s: %d files, %s", name, files, humanBytes(bytes)), client.PushOptions{
		Create:         true,
		Wait:           wait,
		IgnoreManifest: opt.ignoreManifest,
		Buildpacks:     opt.buildpacks,
		NoCache:        opt.noCache,
	})
}

// pushImage deploys an image the nodes' engines have (ref), or uploads a
// `docker save` tarball (file), instead of building source.
func (m *Main) pushImage(ctx context.Context, c *client.Client, name, ref, file string, wait bool) error {
	opts := client.PushOptions{Create: true, Wait: wait, Image: ref, ImageFile: file != ""}
	if file == "" {
		return m.upload(ctx, c, name, strings.NewReader(""), 0, "", opts)
	}
	f, err := os.Open(m.path(file))
	if err != nil {
		return api.Errorf(api.EInvalid, "cannot read the image file: %v — give a `docker save` tarball", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return api.Errorf(api.EInvalid, "%s is not a file — give a `docker save` tarball", file)
	}
	return m.upload(ctx, c, name, f, st.Size(), fmt.Sprintf("Uploading image file %s, %s", filepath.Base(file), humanBytes(st.Size())), opts)
}

// upload sends body (size bytes; a label shows progress when set) as a push
// of name and prints the deploy as it happens.
func (m *Main) upload(ctx context.Context, c *client.Client, name string, body io.Reader, size int64, label string, opts client.PushOptions) error {
	wait, tty := opts.Wait, isTerminal(m.Stderr)
	up := &uploadProgress{w: m.Stderr, tty: tty, size: size, label: label}
	if label != "" {
		up.start()
		body = &countingReader{r: body, up: up}
	} else {
		up.done = true
	}
	opts.Size = size
	opts.OnEvent = func(e api.DeployEvent) {
		up.finish()
		if e.Type == api.DeployEventStatus {
			fmt.Fprintln(m.Stdout, "-----> "+e.Line)
			return
		}
		fmt.Fprintln(m.Stdout, e.Line)
	}
	res, err := c.Push(ctx, name, body, opts)
	up.finish()
	if err != nil {
		return err
	}
	if res.Release != nil {
		fmt.Fprintf(m.Stdout, "Released %s\n", releaseLabel(res.Release.Version))
	}
	if wait && res.Desired > 0 {
		fmt.Fprintf(m.Stdout, "Instances: %d/%d running\n", res.Running, res.Desired)
	}
	if !wait {
		fmt.Fprintf(m.Stdout, "Instances are starting — watch them with: strata app %s\n", name)
	}
	for _, u := range res.URLs {
		fmt.Fprintf(m.Stdout, "URL: %s\n", u)
	}
	return nil
}

// uploadProgress shows "Uploading …" on w, with a live percentage on a
// terminal, and "done" once every byte was sent.
type uploadProgress struct {
	w     io.Writer
	tty   bool
	size  int64
	label string

	mu   sync.Mutex
	sent int64
	last int // last percentage shown
	done bool
}

func (u *uploadProgress) start() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tty {
		fmt.Fprintf(u.w, "%s … 0%%", u.label)
	} else {
		fmt.Fprintf(u.w, "%s … ", u.label)
	}
}

func (u *uploadProgress) add(n int, eof bool) {
	u.mu.Lock()
	u.sent += int64(n)
	complete := eof || u.sent >= u.size
	if u.tty && !u.done && u.size > 0 {
		if pct := int(u.sent * 100 / u.size); pct != u.last {
			u.last = pct
			fmt.Fprintf(u.w, "\r%s … %d%%", u.label, pct)
		}
	}
	u.mu.Unlock()
	if complete {
		u.finish()
	}
}

// finish prints "done" once.
func (u *uploadProgress) finish() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return
	}
	u.done = true
	if u.tty {
		fmt.Fprintf(u.w, "\r%s … done\n", u.label)
	} else {
		fmt.Fprintln(u.w, "done")
	}
}

// countingReader reports upload progress.
type countingReader struct {
	r  io.Reader
	up *uploadProgress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.up.add(n, err == io.EOF)
	return n, err
}

// packDir packs dir like archive.Pack; with mf, the directory's own
// manifests are left out and mf is put at the root instead, so the
// controller applies exactly the manifest the CLI read.
func packDir(ctx context.Context, w io.Writer, dir string, mf *pushManifest, opt archive.PackOptions) error {
	if mf == nil {
		return archive.Pack(ctx, w, dir, opt)
	}
	aw, err := archive.NewWriter(w, 0)
	if err != nil {
		return err
	}
	opt.Skip = func(rel string) bool { return slices.Contains(manifest.Names, rel) }
	if err := aw.AddDir(ctx, "", dir, opt); err != nil {
		return err
	}
	if err := aw.AddFile(mf.name, mf.data, false); err != nil {
		return err
	}
	return aw.Close()
}
