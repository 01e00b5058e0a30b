package microvm_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/drivertest"
	"github.com/strata-paas/strata/deploy/driver/microvm"
)

// helloDroplet writes a droplet of examples/hello-go as the Go buildpack
// makes one (app/bin/hello, static) and returns its path and reference.
func helloDroplet(t *testing.T) (string, api.BlobRef) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "..", "examples", "hello-go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello-go: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "droplet.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, h := range []*tar.Header{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "app/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "app/bin/hello", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	sum := sha256.Sum256(b)
	return p, api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
}

// runDroplet starts the droplet image img as the executor starts a droplet
// on an imager driver (the app dir in the image, HOME the droplet root,
// /tmp), waits for the app to answer and returns its output once stopped.
func runDroplet(t *testing.T, d *microvm.Driver, id string, img *driver.DropletImage, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port, _ := d.AllocatePort(id)
	var out drivertest.Buffer
	h, err := d.Start(ctx, &driver.Spec{ID: id, Image: img.Image, Dir: img.AppDir, Command: command, MemoryMB: 128, Port: port,
		Writable: []string{img.Root},
		Env: []string{"PATH=" + img.AppDir + "/bin:/usr/bin:/bin", fmt.Sprintf("PORT=%d", port), "HOME=" + img.Root, "TMPDIR=/tmp",
			"STRATA_INSTANCE_INDEX=0", "STRATA_RELEASE=1"},
		Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), id) })
	url := fmt.Sprintf("http://%s:%d/", h.Endpoint.Host, h.Endpoint.Port)
	body := waitAnswer(t, url)
	if want := "Hello from Strata! (instance 0, release 1)\n"; body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if err := d.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return out.String()
}

// stackImage skips (fails in CI with docker required) without the stack
// image.
func stackImage(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", microvm.DefaultStackImage).CombinedOutput(); err != nil {
		drivertest.Missing(t, "docker", "the stack image %s is not there (%v: %s) — run `make stack`", microvm.DefaultStackImage, err, strings.TrimSpace(string(out)))
	}
}

// TestDropletOnTheStack: a droplet's image is the stack's root file system
// plus the droplet (made once per digest); the instance boots a qcow2
// overlay of it and runs in the stack (its python3 and /etc/debian_version)
// as uid 1000 owning its HOME, and the overlay goes with Destroy while the
// image stays for the next start.
func TestDropletOnTheStack(t *testing.T) {
	stackImage(t)
	d := newDriver(t)
	path, ref := helloDroplet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	img, err := d.DropletImage(ctx, ref, path)
	if err != nil {
		t.Fatalf("DropletImage: %v", err)
	}
	if !strings.HasSuffix(img.Image, ".rootfs.ext4") || img.Root != microvm.DropletRoot || img.AppDir != microvm.DropletRoot+"/app" {
		t.Fatalf("DropletImage = %+v, want a stack root file system with the droplet at %s", img, microvm.DropletRoot)
	}
	out := runDroplet(t, d, "onstack", img,
		`echo "debian $(cat /etc/debian_version) uid $(id -u) home $(stat -c %u $HOME) app $(stat -c %u bin/hello)"; python3 -c 'print("python", 6*7)'; touch $HOME/written; exec hello`)
	for _, want := range []string{"uid 1000 home 1000 app 1000", "python 42", "hello listening on :8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if !strings.Contains(out, "debian 12") {
		t.Errorf("output %q: not the Debian 12 stack", out)
	}
	inst := filepath.Join(stateDir, "instances", "onstack")
	if _, err := os.Stat(filepath.Join(inst, "disk.qcow2")); err != nil {
		t.Errorf("no overlay in the instance dir: %v", err)
	}
	if err := d.Destroy(ctx, "onstack"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inst); !os.IsNotExist(err) {
		t.Errorf("instance dir (overlay) after Destroy: %v", err)
	}
	before, err := os.Stat(img.Image)
	if err != nil {
		t.Fatalf("the droplet image went with the instance: %v", err)
	}
	again, err := d.DropletImage(ctx, ref, path)
	if err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(again.Image); err != nil || again.Image != img.Image || !os.SameFile(before, after) {
		t.Errorf("second DropletImage = %s (%v), want the cached %s", again.Image, err, img.Image)
	}
	// The first instance's write stayed in its overlay.
	if _, err := d.Start(ctx, &driver.Spec{ID: "onstack2", Image: img.Image, Dir: img.AppDir, Command: "test ! -e $HOME/written",
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + img.Root}, Writable: []string{img.Root}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "onstack2") })
	if res, err := d.Wait(ctx, "onstack2"); err != nil || res.ExitCode != 0 {
		t.Errorf("a second instance sees the first one's write: %+v %v", res, err)
	}
}

// TestDropletWithoutStack: with no stack image the droplet's image holds
// the droplet alone and the guest runs it on busybox (a static droplet runs
// unchanged).
func TestDropletWithoutStack(t *testing.T) {
	d := newDriverIn(t, stateDir, func(c *microvm.Config) { c.StackImage = "strata/no-such-stack:test" })
	path, ref := helloDroplet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	img, err := d.DropletImage(ctx, ref, path)
	if err != nil {
		t.Fatalf("DropletImage: %v", err)
	}
	if !strings.HasSuffix(img.Image, ".droplet.ext4") {
		t.Fatalf("DropletImage = %+v, want the droplet alone", img)
	}
	out := runDroplet(t, d, "nostack", img, `echo "uid $(id -u) home $(stat -c %u $HOME) debian $(cat /etc/debian_version 2>/dev/null || echo none)"; exec hello`)
	if !strings.Contains(out, "uid 1000 home 1000 debian none") || !strings.Contains(out, "hello listening on :8080") {
		t.Errorf("output %q, want the app as uid 1000 on busybox", out)
	}
}

// TestStartRefusesForeignImages: Start boots only droplet images the
// driver made.
func TestStartRefusesForeignImages(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	for _, img := range []string{"/etc/passwd", filepath.Join(t.TempDir(), "x.rootfs.ext4"), "strata/stack:bookworm"} {
		_, err := d.Start(ctx, &driver.Spec{ID: "foreign", Image: img, Dir: "/home/strata/app", Command: "true"})
		if api.ErrorCode(err) != api.EInvalid {
			t.Errorf("Start with image %q: %v, want EInvalid", img, err)
		}
	}
}
