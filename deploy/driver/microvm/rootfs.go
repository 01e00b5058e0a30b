package microvm

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/deploy/driver"
)

// DropletRoot is where a droplet's files are in its guest (HOME); the app
// dir is DropletRoot/app, as in the docker driver's droplet images.
const DropletRoot = "/home/strata"

var _ driver.DropletImager = (*Driver)(nil)

// Kinds of droplet images, the suffix of their file names.
const (
	imageStack   = ".rootfs.ext4"  // the stack plus the droplet: the guest's root
	imageDroplet = ".droplet.ext4" // the droplet alone, mounted at DropletRoot on busybox
)

// KeepImages is how many droplet images are kept beyond those in use;
// older ones unused for an hour are removed when a new one is made.
const KeepImages = 4

func (d *Driver) imageDir() string { return filepath.Join(d.cfg.CacheDir, "droplets") }

// DropletImage returns the droplet's root file system image, made once per
// droplet digest (and stack): an ext4 image (mkfs.ext4 -d, no mounts) of the
// stack's root file system with the droplet under DropletRoot, its files
// owned by GuestUID. Each instance boots a qcow2 copy-on-write overlay of
// it. Without the stack (no docker CLI, engine or stack image) the image
// holds the droplet alone and the guest runs it on busybox, which suits
// static droplets only; that is logged once.
func (d *Driver) DropletImage(ctx context.Context, ref api.BlobRef, dropletPath string) (*driver.DropletImage, error) {
	if !ref.Valid() {
		return nil, api.Errorf(api.EInvalid, "droplet reference %q is not a sha256 blob reference", ref)
	}
	out := &driver.DropletImage{Root: DropletRoot, AppDir: path.Join(DropletRoot, "app")}
	unlock := d.lockKey(string(ref))
	defer unlock()
	st, err := d.stack(ctx)
	name := ref.Digest()
	if err != nil {
		if d.noStack.CompareAndSwap(false, true) {
			d.log.Warn("microvm.no_stack", "reason", api.ErrorMessage(err),
				"consequence", "guests run on busybox: only static droplets run")
		}
		name += imageDroplet
	} else {
		name += "-" + st.id[:12] + imageStack
	}
	out.Image = filepath.Join(d.imageDir(), name)
	if _, err := os.Stat(out.Image); err == nil {
		now := time.Now()
		_ = os.Chtimes(out.Image, now, now)
		return out, nil
	}
	t0 := time.Now()
	if err := d.buildImage(ctx, st, dropletPath, out.Image); err != nil {
		return nil, err
	}
	d.log.Info("microvm.droplet_image", "droplet", ref, "image", filepath.Base(out.Image), "took", time.Since(t0))
	d.pruneImages(out.Image)
	return out, nil
}

// buildImage makes the image of the droplet at dropletPath (on the stack
// st, or alone when st is nil) at img.
func (d *Driver) buildImage(ctx context.Context, st *stackTree, dropletPath, img string) error {
	if err := os.MkdirAll(d.imageDir(), 0o700); err != nil {
		return err
	}
	tmp, err := d.workDir(d.imageDir(), ".build-")
	if err != nil {
		return err
	}
	defer d.doneWork(tmp)
	tree := filepath.Join(tmp, "root")
	droplet := tree
	var owners []owner
	rootOwner := "0:0"
	if st != nil {
		if err := linkTree(st.root, tree); err != nil {
			return fmt.Errorf("microvm driver: copy the stack: %w", err)
		}
		owners = slices.Clone(st.owners)
		droplet = filepath.Join(tree, DropletRoot)
		_ = os.RemoveAll(droplet) // whatever the stack has there
	} else {
		rootOwner = fmt.Sprintf("%d:%d", GuestUID, GuestUID)
	}
	if err := os.MkdirAll(droplet, 0o755); err != nil {
		return err
	}
	f, err := os.Open(dropletPath)
	if err != nil {
		return api.Errorf(api.EUnavailable, "cannot open cached droplet: %v", err)
	}
	err = archive.Extract(ctx, f, droplet, archive.DefaultLimits())
	f.Close()
	if err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(droplet, "app")); err != nil || !st.IsDir() {
		return api.Errorf(api.EInvalid, "the droplet has no app/ directory — rebuild the app")
	}
	// The droplet's files are the guest user's.
	_ = filepath.WalkDir(droplet, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type()&fs.ModeSymlink == 0 {
			r, _ := filepath.Rel(tree, p)
			if r != "." {
				owners = append(owners, owner{path: filepath.ToSlash(r), uid: GuestUID, gid: GuestUID})
			}
		}
		return nil
	})
	raw := filepath.Join(tmp, "image.ext4")
	if err := d.mkfs(ctx, tree, raw, "root_owner="+rootOwner); err != nil {
		return err
	}
	if err := d.setOwners(ctx, raw, owners); err != nil {
		return err
	}
	return os.Rename(raw, img)
}

// workDir makes a work dir in dir, which Sweep leaves alone until doneWork
// removes it.
func (d *Driver) workDir(dir, prefix string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tmp, err := os.MkdirTemp(dir, prefix)
	if err == nil {
		d.building[tmp] = true
	}
	return tmp, err
}

func (d *Driver) doneWork(tmp string) {
	_ = os.RemoveAll(tmp)
	d.mu.Lock()
	delete(d.building, tmp)
	d.mu.Unlock()
}

// sweepBuilds removes the work dirs of image and stack builds that are not
// under way (an executor killed while making one left them).
func (d *Driver) sweepBuilds() {
	for _, g := range []string{filepath.Join(d.imageDir(), ".build-*"), filepath.Join(d.cfg.CacheDir, "stacks", ".unpack-*")} {
		dirs, _ := filepath.Glob(g)
		for _, w := range dirs {
			d.mu.Lock()
			busy := d.building[w]
			d.mu.Unlock()
			if !busy && os.RemoveAll(w) == nil {
				d.log.Info("microvm.stale_build_removed", "dir", w)
			}
		}
	}
}

// linkTree recreates the tree at src at dst with hard links for its files
// (the stack's tree is only read), falling back to copies across file
// systems.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, r)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			if err := os.Mkdir(t, 0o700); err != nil {
				return err
			}
			return os.Chmod(t, info.Mode()&(fs.ModePerm|fs.ModeSticky))
		case e.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, t)
		case e.Type().IsRegular():
			if err := os.Link(p, t); err == nil {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(t, b, info.Mode().Perm())
		}
		return nil
	})
}

// setOwners gives the files of the ext4 image img their owners with
// debugfs (e2fsprogs), which edits the image without mounting it. Names
// debugfs cannot be given (quotes, backslashes, control characters) keep
// the unpacking user's.
func (d *Driver) setOwners(ctx context.Context, img string, owners []owner) error {
	if len(owners) == 0 {
		return nil
	}
	var script bytes.Buffer
	skipped := 0
	for _, o := range owners {
		p := strconv.Quote("/" + o.path)
		if p != `"/`+o.path+`"` { // debugfs reads quotes, not Go's escapes
			skipped++
			continue
		}
		fmt.Fprintf(&script, "sif %s uid %d\nsif %s gid %d\n", p, o.uid, p, o.gid)
	}
	if skipped > 0 {
		d.log.Warn("microvm.owners_skipped", "image", filepath.Base(img), "files", skipped)
	}
	sf := img + ".debugfs"
	if err := os.WriteFile(sf, script.Bytes(), 0o600); err != nil {
		return err
	}
	defer os.Remove(sf)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, d.cfg.Debugfs, "-w", "-f", sf, img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("debugfs (set owners in %s): %v: %s", filepath.Base(img), err, tail(string(out), 500))
	}
	// debugfs reports a command's failure on its output and carries on.
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, ": File not found") || strings.Contains(line, "Filesystem opened read/only") {
			return fmt.Errorf("debugfs (set owners in %s): %s", filepath.Base(img), line)
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// checkImage says which kind of droplet image p is, which must be one this
// driver made (in its image dir).
func (d *Driver) checkImage(p string) (string, error) {
	if filepath.Dir(p) != d.imageDir() || !filepath.IsAbs(p) {
		return "", api.Errorf(api.EInvalid, "image %q is not a droplet image of the microvm driver", p)
	}
	kind := imageDroplet
	if strings.HasSuffix(p, imageStack) {
		kind = imageStack
	} else if !strings.HasSuffix(p, imageDroplet) {
		return "", api.Errorf(api.EInvalid, "image %q is not a droplet image of the microvm driver", p)
	}
	if _, err := os.Stat(p); err != nil {
		return "", api.Errorf(api.EUnavailable, "the droplet image %s is gone", filepath.Base(p))
	}
	return kind, nil
}

// overlay creates the instance's qcow2 copy-on-write overlay at disk on the
// raw image base: the guest's writes go there, base is only read.
func (d *Driver) overlay(ctx context.Context, base, disk string) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, d.cfg.QemuImg, "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", disk).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create (the overlay of %s): %v: %s", filepath.Base(base), err, strings.TrimSpace(string(out)))
	}
	now := time.Now()
	_ = os.Chtimes(base, now, now)
	return nil
}

// pruneImages removes droplet images beyond the KeepImages newest that no
// VM of this driver boots from and that were not used for an hour; keep is
// the one just made.
func (d *Driver) pruneImages(keep string) {
	ents, err := os.ReadDir(d.imageDir())
	if err != nil {
		return
	}
	inUse := map[string]bool{keep: true}
	d.mu.Lock()
	for _, v := range d.vms {
		if v.image != "" {
			inUse[v.image] = true
		}
	}
	d.mu.Unlock()
	type img struct {
		path string
		used time.Time
	}
	var imgs []img
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !(strings.HasSuffix(e.Name(), imageStack) || strings.HasSuffix(e.Name(), imageDroplet)) {
			continue
		}
		imgs = append(imgs, img{filepath.Join(d.imageDir(), e.Name()), info.ModTime()})
	}
	slices.SortFunc(imgs, func(a, b img) int { return b.used.Compare(a.used) })
	for i, m := range imgs {
		if i < KeepImages || inUse[m.path] || time.Since(m.used) < time.Hour {
			continue
		}
		if err := os.Remove(m.path); err == nil {
			d.log.Info("microvm.droplet_image_removed", "image", filepath.Base(m.path))
		}
	}
}
