package docker_test

import (
	"bytes"
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
	"github.com/strata-paas/strata/deploy/driver/docker"
)

// buildContext packs files into a gzip tar build context.
func buildContext(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := archive.Pack(ctx(t), &buf, dir, archive.PackOptions{}); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// stepsLeft returns the images of a build's steps (its " ---> id" output
// lines, the base image excepted) that the engine still has.
func stepsLeft(t *testing.T, out string) []string {
	t.Helper()
	base, err := exec.Command("docker", "image", "inspect", "-f", "{{.ID}}", docker.DefaultStackImage).Output()
	if err != nil {
		t.Fatalf("docker image inspect: %v", err)
	}
	var left []string
	for _, l := range strings.Split(out, "\n") {
		id, ok := strings.CutPrefix(strings.TrimSpace(l), "---> ")
		if !ok || strings.Contains(id, " ") || strings.Contains(string(base), id) {
			continue
		}
		if imageExists(t, id) {
			left = append(left, id)
		}
	}
	return left
}

// TestBuildImage: a Dockerfile FROM the stack builds with the engine's
// build API, its output streams, and the image comes back as a `docker
// save` tarball that the driver loads and runs as an image deploy; the
// builder's engine keeps no image of the build. A failing step is EInvalid
// with the engine's message and leaves nothing either.
func TestBuildImage(t *testing.T) {
	d := newDriver(t) // skips (or fails in CI) without an engine and the stack
	b := docker.NewImageBuilder("")
	defer b.Close()
	if ok, err := b.HasImage(ctx(t), docker.DefaultStackImage); !ok || err != nil {
		t.Fatalf("HasImage(stack) = %v, %v", ok, err)
	}
	if ok, err := b.HasImage(ctx(t), "strata-test/absent:1"); ok || err != nil {
		t.Fatalf("HasImage(absent) = %v, %v", ok, err)
	}
	label := "io.strata.build=test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	k, v, _ := strings.Cut(label, "=")
	labels := map[string]string{k: v}
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // steps are slow on a loaded machine
	defer cancel()

	src := buildContext(t, map[string]string{
		"Dockerfile": "FROM " + docker.DefaultStackImage + "\nWORKDIR /app\nCOPY hello.sh /app/hello.sh\nRUN echo built-step\nEXPOSE 9090\n",
		"hello.sh":   "#!/bin/sh\necho hello\n",
	})
	var out, saved bytes.Buffer
	if err := b.BuildImage(bctx, src, labels, 256, &out, &saved); err != nil {
		t.Fatalf("BuildImage: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Step 1/6 : FROM " + docker.DefaultStackImage, "built-step"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("build output lacks %q:\n%s", want, out.String())
		}
	}
	if left := stepsLeft(t, out.String()); len(left) > 0 {
		t.Errorf("images of the build left on the engine: %v", left)
	}
	tarball := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(tarball, saved.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(saved.Bytes())
	blob := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	img, err := d.AppImage(ctx(t), "", blob, tarball)
	if err != nil {
		t.Fatalf("AppImage of the built tarball: %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", img.Image).Run() })
	if img.AppDir != "/app" || img.Port != 9090 {
		t.Errorf("built image %+v, want working dir /app and port 9090", img)
	}

	// A failing step: the app's fault, with the engine's words, and the
	// steps before it are not left behind.
	src = buildContext(t, map[string]string{"Dockerfile": "FROM " + docker.DefaultStackImage + "\nWORKDIR /app\nRUN echo broken-step && exit 3\n"})
	out.Reset()
	saved.Reset()
	err = b.BuildImage(bctx, src, labels, 256, &out, &saved)
	if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), "returned a non-zero code: 3") {
		t.Fatalf("failing build: %v, want invalid with the exit code\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "broken-step") || saved.Len() != 0 {
		t.Errorf("failing build: output %q, saved %d bytes", out.String(), saved.Len())
	}
	if left := stepsLeft(t, out.String()); len(left) > 0 {
		t.Errorf("images of the failed build left on the engine: %v", left)
	}
}
