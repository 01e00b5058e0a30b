package docker_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/docker"
)

// droplet writes a droplet tarball with files under app/ (executable: *.sh
// and names without a dot) and returns its path and digest. A unique marker makes its digest unique per test run.
func droplet(t testing.TB, files map[string]string) (string, api.BlobRef) {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("staging.json", []byte(`{"buildpack":"test","marker":"`+strconv.FormatInt(time.Now().UnixNano(), 10)+`"}`), false); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		exec := strings.HasSuffix(name, ".sh") || !strings.Contains(name, ".")
		if err := w.AddFile("app/"+name, []byte(data), exec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "droplet.tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return p, api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
}

func imageExists(t *testing.T, ref string) bool {
	t.Helper()
	return exec.Command("docker", "image", "inspect", ref).Run() == nil
}

// TestDropletImage: a droplet becomes an image (stack + one droplet layer,
// loaded without a registry), cached by digest; an instance runs from it
// with the droplet's app dir as its writable working dir; once no instance
// uses it, the image is collected.
func TestDropletImage(t *testing.T) {
	node := newNode()
	d := driverOf(t, node, func(c *docker.Config) { c.KeepImages = -1; c.ImageDir = t.TempDir() })
	path, ref := droplet(t, map[string]string{"hello.txt": "hello from the droplet\n", "run.sh": "#!/bin/sh\necho run\n"})
	img, err := d.DropletImage(ctx(t), ref, path)
	if err != nil {
		t.Fatalf("DropletImage: %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", img.Image).Run() })
	if img.AppDir != "/home/strata/app" || img.Root != "/home/strata" || !imageExists(t, img.Image) {
		t.Fatalf("DropletImage = %+v, want an image with the app at /home/strata/app", img)
	}
	again, err := d.DropletImage(ctx(t), ref, "/nonexistent") // cached: the droplet is not read
	if err != nil || again.Image != img.Image {
		t.Fatalf("second DropletImage = %+v, %v; want the cached image", again, err)
	}
	spec, out, _ := run(t, d, driver.Spec{Image: img.Image, Dir: img.AppDir, Writable: []string{img.Root},
		Command: `pwd; cat hello.txt; ./run.sh; id -u; touch ./new && echo app-writable; touch /home/strata/x && echo home-writable; touch /etc/x 2>/dev/null || echo etc-read-only`})
	res, err := d.Wait(ctx(t), spec.ID)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v; output %q", res, err, out.String())
	}
	want := "/home/strata/app\nhello from the droplet\nrun\n2000\napp-writable\nhome-writable\netc-read-only\n"
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if err := d.Destroy(ctx(t), spec.ID); err != nil {
		t.Fatal(err)
	}
	if imageExists(t, img.Image) {
		t.Fatalf("image %s still exists once no instance uses it (KeepImages -1)", img.Image)
	}
}

// TestDropletImageRefusesUnsafeEntries: a droplet entry escaping its root is
// refused before anything is loaded.
func TestDropletImageRefusesUnsafeEntries(t *testing.T) {
	d := newDriver(t)
	// archive.Writer refuses bad names itself, so craft one by hand.
	bad := craftTarGz(t, "../escape", "x")
	p := filepath.Join(t.TempDir(), "bad.tgz")
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bad)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	if _, err := d.DropletImage(context.Background(), ref, p); err == nil {
		t.Fatalf("DropletImage of a droplet with ../escape succeeded")
	}
	if imageExists(t, "strata/droplet:"+hex.EncodeToString(sum[:])) {
		t.Fatalf("an image was loaded from an unsafe droplet")
	}
}

func craftTarGz(t *testing.T, name, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(data))
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// TestAppImage: an image deploy names an image the engine has (run as the
// image's user, or ImageUID when that is root) or a tarball that must hold
// one image; anything else is refused with what to do.
func TestAppImage(t *testing.T) {
	d := newDriver(t)
	if _, err := d.AppImage(ctx(t), "strata-test/absent:1", "", ""); api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), "not on this node") {
		t.Errorf("AppImage of an absent image: %v, want invalid, not on this node", err)
	}
	if _, err := d.AppImage(ctx(t), "-rm", "", ""); api.ErrorCode(err) != api.EInvalid {
		t.Errorf("AppImage of %q: %v, want invalid", "-rm", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	if err := os.WriteFile(garbage, []byte("not a tarball"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("not a tarball"))
	if _, err := d.AppImage(ctx(t), "", api.BlobRef("sha256:"+hex.EncodeToString(sum[:])), garbage); err == nil {
		t.Errorf("AppImage of a garbage tarball succeeded")
	}
	img, err := d.AppImage(ctx(t), docker.DefaultStackImage, "", "")
	if err != nil || img.AppDir != "/" || img.Port != 0 || img.Image != docker.DefaultStackImage {
		t.Fatalf("AppImage of the stack = %+v, %v; want it with working dir / and no declared port", img, err)
	}
	spec, out, _ := run(t, d, driver.Spec{Image: img.Image, Dir: img.AppDir, Command: "id -u; pwd"})
	if res, err := d.Wait(ctx(t), spec.ID); err != nil || res.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v; output %q", res, err, out.String())
	}
	if got := out.String(); got != "2000\n/\n" {
		t.Errorf("output %q, want uid 2000 (the image's user is root) in /", got)
	}
}
