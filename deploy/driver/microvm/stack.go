package microvm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strata-paas/strata/api"
)

// DefaultStackImage is the Docker image whose file system guests run on:
// the stack the docker driver's containers run on (`make stack`).
const DefaultStackImage = "strata/stack:bookworm"

// stackTree is the stack's root file system unpacked on the node, cached by
// the image's id: the tree mkfs.ext4 -d copies into droplet images, and the
// owners its files must have there (unpacking does not chown).
type stackTree struct {
	id     string // the image id's hex
	root   string
	owners []owner
}

// owner is a file's owner as the stack's tarball says, when that is not
// who unpacked it.
type owner struct {
	path     string // relative to the tree's root, slash-separated
	uid, gid int
}

// stack returns the stack's tree, unpacking it from the Docker engine's
// image (`docker save`) once per image id. It is EUnavailable when there is
// no docker CLI, no engine or no stack image: guests then run on busybox.
func (d *Driver) stack(ctx context.Context) (*stackTree, error) {
	d.stackMu.Lock()
	defer d.stackMu.Unlock()
	if d.cfg.Docker == "" {
		return nil, api.Errorf(api.EUnavailable, "no docker CLI to read the stack image %s from", d.cfg.StackImage)
	}
	out, err := exec.CommandContext(ctx, d.cfg.Docker, "image", "inspect", "--format", "{{.Id}}", d.cfg.StackImage).CombinedOutput()
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "the stack image %s is not on this node (%s) — build it with `make stack`", d.cfg.StackImage, strings.TrimSpace(string(out)))
	}
	id := strings.TrimPrefix(strings.TrimSpace(string(out)), "sha256:")
	if len(id) < 12 || strings.ContainsAny(id, "/. ") {
		return nil, api.Errorf(api.EUnavailable, "docker image inspect %s: unexpected id %q", d.cfg.StackImage, id)
	}
	if d.stackTree != nil && d.stackTree.id == id {
		return d.stackTree, nil
	}
	dir := filepath.Join(d.cfg.CacheDir, "stacks", id[:12])
	if st, err := loadStack(dir, id); err == nil {
		d.stackTree = st
		return st, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	tmp, err := d.workDir(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return nil, err
	}
	defer d.doneWork(tmp)
	save := filepath.Join(tmp, "image.tar")
	if out, err := exec.CommandContext(ctx, d.cfg.Docker, "save", "-o", save, id).CombinedOutput(); err != nil {
		return nil, api.Errorf(api.EUnavailable, "docker save %s: %v: %s", d.cfg.StackImage, err, strings.TrimSpace(string(out)))
	}
	root := filepath.Join(tmp, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	owners, err := unpackImage(ctx, save, root)
	if err != nil {
		return nil, fmt.Errorf("unpack the stack image %s: %w", d.cfg.StackImage, err)
	}
	_ = os.Remove(save)
	if err := writeOwners(filepath.Join(tmp, "owners"), owners); err != nil {
		return nil, err
	}
	// Older stacks go; droplet images made from them stand on their own.
	if old, _ := os.ReadDir(filepath.Dir(dir)); len(old) > 0 {
		for _, o := range old {
			if o.Name() != filepath.Base(tmp) {
				_ = os.RemoveAll(filepath.Join(filepath.Dir(dir), o.Name()))
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "id"), []byte(id), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	d.log.Info("microvm.stack_unpacked", "image", d.cfg.StackImage, "id", id[:12], "dir", dir)
	st, err := loadStack(dir, id)
	if err != nil {
		return nil, err
	}
	d.stackTree = st
	return st, nil
}

// loadStack reads an unpacked stack of image id from dir.
func loadStack(dir, id string) (*stackTree, error) {
	b, err := os.ReadFile(filepath.Join(dir, "id"))
	if err != nil || string(b) != id {
		return nil, fmt.Errorf("no stack %s in %s", id, dir)
	}
	f, err := os.Open(filepath.Join(dir, "owners"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &stackTree{id: id, root: filepath.Join(dir, "root")}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var o owner
		fs := strings.SplitN(sc.Text(), " ", 3)
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s: malformed owners line %q", dir, sc.Text())
		}
		o.uid, _ = strconv.Atoi(fs[0])
		o.gid, _ = strconv.Atoi(fs[1])
		o.path = fs[2]
		st.owners = append(st.owners, o)
	}
	return st, sc.Err()
}

func writeOwners(p string, owners []owner) error {
	var b bytes.Buffer
	for _, o := range owners {
		fmt.Fprintf(&b, "%d %d %s\n", o.uid, o.gid, o.path)
	}
	return os.WriteFile(p, b.Bytes(), 0o600)
}

// unpackImage unpacks the file system of the image in a `docker save`
// tarball (manifest.json naming its layers, each a tar, applied in order
// with their whiteouts) into root, writing only through an os.Root on it.
// Device nodes, FIFOs and sockets are left out (the guest's /dev is a
// devtmpfs), setuid and setgid bits are cleared, nothing is chowned: it
// returns the owners that differ from the unpacking user's.
func unpackImage(ctx context.Context, save, root string) ([]owner, error) {
	var manifest []struct{ Layers []string }
	if err := scanTar(save, func(name string, r io.Reader) (bool, error) {
		if name != "manifest.json" {
			return false, nil
		}
		return true, json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&manifest)
	}); err != nil {
		return nil, err
	}
	if len(manifest) != 1 || len(manifest[0].Layers) == 0 {
		return nil, fmt.Errorf("%s holds %d images, want one with layers", filepath.Base(save), len(manifest))
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	u := &unpacker{root: r, uid: os.Geteuid(), gid: os.Getegid(), owners: map[string]owner{}}
	for _, layer := range manifest[0].Layers {
		found := false
		if err := scanTar(save, func(name string, lr io.Reader) (bool, error) {
			if path.Clean(name) != path.Clean(layer) {
				return false, nil
			}
			found = true
			return true, u.layer(ctx, lr)
		}); err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("layer %s is not in the tarball", layer)
		}
	}
	var out []owner
	_ = fs.WalkDir(r.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if o, ok := u.owners[p]; ok && err == nil {
			out = append(out, o)
		}
		return nil
	})
	return out, nil
}

// scanTar calls fn with each regular file of the tar at p until fn says it
// is done.
func scanTar(p string, fn func(name string, r io.Reader) (bool, error)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if done, err := fn(h.Name, tr); done || err != nil {
			return err
		}
	}
}

type unpacker struct {
	root     *os.Root
	uid, gid int
	owners   map[string]owner // by cleaned path
}

// layer applies one layer tar (plain or gzip-compressed).
func (u *unpacker) layer(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := u.entry(tr, h); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

func (u *unpacker) entry(tr *tar.Reader, h *tar.Header) error {
	name := path.Clean(strings.TrimPrefix(h.Name, "/"))
	if name == "." {
		return nil
	}
	if !filepath.IsLocal(name) || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("entry is not local to the layer")
	}
	dir, base := path.Split(name)
	dir = path.Clean(dir)
	if base == ".wh..wh..opq" { // an opaque dir: what lower layers put there goes
		ents, _ := fs.ReadDir(u.root.FS(), dir)
		for _, e := range ents {
			_ = u.root.RemoveAll(path.Join(dir, e.Name()))
		}
		return nil
	}
	if w, ok := strings.CutPrefix(base, ".wh."); ok {
		return u.root.RemoveAll(path.Join(dir, w))
	}
	if dir != "." {
		if err := u.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(h.Mode).Perm() // setuid and setgid cleared
	if h.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := u.root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg:
		_ = u.root.RemoveAll(name)
		f, err := u.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		_ = u.root.RemoveAll(name)
		// The target is the guest's business: it is never followed here
		// (and a link's own owner and mode mean nothing).
		return u.root.Symlink(h.Linkname, name)
	case tar.TypeLink:
		target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
		if !filepath.IsLocal(target) {
			return fmt.Errorf("hard link to %q, outside the layer", h.Linkname)
		}
		_ = u.root.RemoveAll(name)
		if err := u.root.Link(target, name); err != nil {
			return err
		}
		return nil // same inode: mode and owner are the target's
	default: // devices, FIFOs: the guest's /dev is a devtmpfs
		return nil
	}
	if err := u.root.Chmod(name, mode); err != nil {
		return err
	}
	if h.Uid != u.uid || h.Gid != u.gid {
		u.owners[name] = owner{path: name, uid: h.Uid, gid: h.Gid}
	} else {
		delete(u.owners, name)
	}
	return nil
}
