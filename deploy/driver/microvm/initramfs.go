package microvm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Modules are the kernel modules the guest loads, in dependency order: the
// Debian cloud kernel builds its virtio drivers as modules (docs/microvm.md).
var Modules = []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_console"}

// cpioWriter writes a cpio archive in the "newc" format the kernel unpacks
// as its initramfs.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor int) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	var b bytes.Buffer
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	_, c.err = c.w.Write(b.Bytes())
}

func (c *cpioWriter) dir(name string) { c.entry(name, cpioDir|0o755, nil, 0, 0) }
func (c *cpioWriter) file(name string, mode uint32, data []byte) {
	c.entry(name, cpioFile|mode, data, 0, 0)
}
func (c *cpioWriter) symlink(name, target string) {
	c.entry(name, cpioSymlink|0o777, []byte(target), 0, 0)
}
func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	return c.err
}

// baseInitramfs builds (once per content) the part of every guest's
// initramfs that does not depend on the instance: the init, busybox with a
// link per applet, the virtio modules of the kernel, and /dev/console. It
// returns the archive's path under dir.
func baseInitramfs(dir, initPath, busybox, moduleDir string) (string, error) {
	initBin, err := os.ReadFile(initPath)
	if err != nil {
		return "", fmt.Errorf("guest init: %w — build it with `CGO_ENABLED=0 go build -o bin/ ./cmd/strata-guest-init`", err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", fmt.Errorf("busybox: %w — install busybox-static", err)
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w — install busybox-static", err)
	}
	type mod struct {
		name string
		data []byte
	}
	var mods []mod
	for _, m := range Modules {
		p, err := findModule(moduleDir, m)
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		mods = append(mods, mod{m, data})
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "strata", "lib", "lib/modules", "etc"} {
		c.dir(d)
	}
	c.entry("dev/console", cpioChar|0o600, nil, 5, 1)
	c.file("init", 0o755, initBin)
	c.file("bin/busybox", 0o755, bb)
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" && !strings.ContainsAny(a, "/.") {
			c.symlink("bin/"+a, "busybox")
		}
	}
	c.file("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/:/bin/sh\nstrata:x:%d:%d:strata:/tmp:/bin/sh\n", GuestUID, GuestUID)))
	c.file("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nstrata:x:%d:\n", GuestUID)))
	for _, m := range mods {
		c.file("lib/modules/"+m.name+".ko", 0o644, m.data)
	}
	if err := c.close(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	path := filepath.Join(dir, "initramfs-"+hex.EncodeToString(sum[:8])+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// modulePaths are the modules' paths inside the initramfs, in load order.
func modulePaths() []string {
	out := make([]string, len(Modules))
	for i, m := range Modules {
		out[i] = "/lib/modules/" + m + ".ko"
	}
	return out
}

// findModule finds module name (uncompressed .ko) under the kernel's
// module dir.
func findModule(moduleDir, name string) (string, error) {
	var found string
	_ = filepath.WalkDir(filepath.Join(moduleDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name+".ko" {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		return "", fmt.Errorf("kernel module %s.ko is not under %s — install the kernel's package (linux-image-cloud-amd64)", name, moduleDir)
	}
	return found, nil
}

// instanceInitramfs writes the base archive followed by one holding the
// instance's config: the kernel unpacks concatenated archives in order.
func instanceInitramfs(path, base string, config []byte) error {
	b, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	buf := bytes.NewBuffer(b)
	c := &cpioWriter{w: buf}
	c.dir("strata")
	c.file(strings.TrimPrefix(guestConfigPath, "/"), 0o600, config)
	if err := c.close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}
