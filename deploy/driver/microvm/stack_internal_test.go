package microvm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-paas/strata/deploy/driver/drivertest"
)

// layerTar writes a layer tar of hdrs (a regular file's content is its
// name), gzip-compressed when gz.
func layerTar(t *testing.T, gz bool, hdrs ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(h.Name))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(b.Bytes())
	_ = zw.Close()
	return z.Bytes()
}

// saveTar writes a `docker save` tarball: layers as <n>/layer.tar, then
// manifest.json naming them in order.
func saveTar(t *testing.T, layers ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	var names []string
	for i, l := range layers {
		name := string(rune('a'+i)) + "/layer.tar"
		names = append(names, `"`+name+`"`)
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(l))})
		_, _ = tw.Write(l)
	}
	m := `[{"Config":"c.json","RepoTags":["strata/stack:test"],"Layers":[` + strings.Join(names, ",") + `]}]`
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m))})
	_, _ = tw.Write([]byte(m))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUnpackImage: layers apply in order with their whiteouts; setuid bits
// are cleared, devices left out, links kept as links (absolute targets
// too, never followed), and owners other than the unpacking user's are
// returned instead of set.
func TestUnpackImage(t *testing.T) {
	uid, gid := os.Geteuid(), os.Getegid()
	l1 := layerTar(t, false,
		&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: gid},
		&tar.Header{Name: "etc/a", Typeflag: tar.TypeReg, Mode: 0o644, Uid: uid, Gid: gid},
		&tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: uid, Gid: gid},
		&tar.Header{Name: "usr/bin/su2", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"},
		&tar.Header{Name: "var/mail/x", Typeflag: tar.TypeReg, Mode: 0o660, Uid: uid + 8, Gid: gid + 8},
		&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: uid, Gid: gid},
		&tar.Header{Name: "lib", Typeflag: tar.TypeSymlink, Linkname: "usr/lib"},
		&tar.Header{Name: "etc/alt", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin/su"},
		&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		&tar.Header{Name: "old/gone", Typeflag: tar.TypeReg, Mode: 0o644, Uid: uid, Gid: gid},
		&tar.Header{Name: "opq/keep", Typeflag: tar.TypeReg, Mode: 0o644, Uid: uid, Gid: gid},
	)
	l2 := layerTar(t, true,
		&tar.Header{Name: "old/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		&tar.Header{Name: "opq/new", Typeflag: tar.TypeReg, Mode: 0o644, Uid: uid, Gid: gid},
	)
	root := t.TempDir()
	owners, err := unpackImage(context.Background(), saveTar(t, l1, l2), root)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/a")); err != nil || string(b) != "etc/a" {
		t.Errorf("etc/a = %q, %v", b, err)
	}
	su, err := os.Stat(filepath.Join(root, "usr/bin/su"))
	if err != nil || su.Mode() != 0o755 {
		t.Errorf("usr/bin/su: %v %v, want 0755 without setuid", su.Mode(), err)
	}
	if su2, err := os.Stat(filepath.Join(root, "usr/bin/su2")); err != nil || !os.SameFile(su, su2) {
		t.Errorf("usr/bin/su2 is not a hard link of su: %v", err)
	}
	if tmp, err := os.Stat(filepath.Join(root, "tmp")); err != nil || tmp.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp lost its sticky bit: %v %v", tmp.Mode(), err)
	}
	for name, want := range map[string]string{"lib": "usr/lib", "etc/alt": "/usr/bin/su"} {
		if got, err := os.Readlink(filepath.Join(root, name)); err != nil || got != want {
			t.Errorf("%s → %q (%v), want %q", name, got, err, want)
		}
	}
	for _, gone := range []string{"dev/null", "old/gone", "opq/keep"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is there (%v), want it left out or whited out", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "opq/new")); err != nil {
		t.Errorf("opq/new: %v", err)
	}
	if len(owners) != 1 || owners[0] != (owner{path: "var/mail/x", uid: uid + 8, gid: gid + 8}) {
		t.Errorf("owners = %+v, want var/mail/x's alone", owners)
	}

	for _, bad := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "x", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
	} {
		_, err := unpackImage(context.Background(), saveTar(t, layerTar(t, false, bad)), t.TempDir())
		if err == nil {
			t.Errorf("entry %q (link %q) was unpacked", bad.Name, bad.Linkname)
		}
	}
}

// TestSweepRemovesStaleBuilds: Sweep removes the work dirs of image and
// stack builds an earlier executor left, not one under way.
func TestSweepRemovesStaleBuilds(t *testing.T) {
	dir := t.TempDir()
	d := &Driver{cfg: Config{StateDir: dir, CacheDir: dir}, log: slog.New(slog.DiscardHandler),
		vms: map[string]*vm{}, building: map[string]bool{}}
	stale := []string{filepath.Join(dir, "droplets", ".build-1"), filepath.Join(dir, "stacks", ".unpack-2")}
	for _, p := range append(stale, filepath.Join(dir, "instances")) {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := d.workDir(d.imageDir(), ".build-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sweep(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the sweep (%v)", p, err)
		}
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("the build under way lost its work dir: %v", err)
	}
	d.doneWork(busy)
	if _, err := os.Stat(busy); !os.IsNotExist(err) {
		t.Errorf("doneWork left %s (%v)", busy, err)
	}
}

// TestSetOwners: owners are set in the ext4 image itself (no mount),
// names with spaces included; a name debugfs cannot be given is skipped.
func TestSetOwners(t *testing.T) {
	mkfs, err1 := exec.LookPath("mkfs.ext4")
	debugfs, err2 := exec.LookPath("debugfs")
	if err1 != nil || err2 != nil {
		drivertest.Missing(t, "qemu", "e2fsprogs is not installed (apt-get install e2fsprogs)")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, f := range []string{"home/strata/app/x", "home/strata/a b", "etc/q\"uote"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := &Driver{cfg: Config{Mkfs: mkfs, Debugfs: debugfs}, log: slog.New(slog.DiscardHandler)}
	img := filepath.Join(dir, "img.ext4")
	ctx := context.Background()
	if err := d.mkfs(ctx, tree, img, "root_owner=0:0"); err != nil {
		t.Fatal(err)
	}
	if err := d.setOwners(ctx, img, []owner{{"home/strata/app/x", 1000, 1001}, {"home/strata/a b", 1002, 1003}, {"etc/q\"uote", 7, 7}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"/home/strata/app/x": "User:  1000   Group:  1001", "/home/strata/a b": "User:  1002   Group:  1003"} {
		out, err := exec.Command(debugfs, "-R", "stat \""+name+"\"", img).CombinedOutput()
		if err != nil || !strings.Contains(strings.Join(strings.Fields(string(out)), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("%s in the image: %v\n%s", name, err, out)
		}
	}
	if err := d.setOwners(ctx, img, []owner{{"no/such/file", 1, 1}}); err == nil {
		t.Errorf("setOwners of a missing file succeeded")
	}
}
