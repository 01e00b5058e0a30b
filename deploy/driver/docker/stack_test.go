package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/deploy/driver/docker"
)

// TestBuildStackTagsTheImportedStack: images built on a stack inherit its
// content label; BuildStack neither takes one of them for the stack nor
// leaves the stack's tag on one (a build that went wrong, or an earlier
// BuildStack that took the newest labelled image), and builds nothing when
// the imported stack is there.
func TestBuildStackTagsTheImportedStack(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		missing(t, "no Docker engine: %v", err)
	}
	node := newNode()
	r := docker.StackRecipe{Image: "strata-test/stack:" + node, Suite: "test-" + node}
	derived := "strata-test/derived:" + node
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", r.Image, derived).Run() })
	dockerCLI := func(stdin []byte, args ...string) string {
		t.Helper()
		cmd := exec.Command("docker", args...)
		cmd.Stdin = bytes.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %v: %v: %s", args, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/stack", Mode: 0o644, Size: 3}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("yes"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	stack := dockerCLI(rootfs.Bytes(), "import", "--change", "LABEL "+docker.LabelStackContent+"="+r.Content(), "-", r.Image)
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+r.Image+"\nCOPY f /f\nEXPOSE 1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The classic builder, as on Docker 20.10 (the image's parent is the stack).
	build := exec.Command("docker", "build", "-q", "-t", derived, ctxDir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v: %s", err, b)
	}
	id := func(ref string) string { return dockerCLI(nil, "image", "inspect", "-f", "{{.Id}}", ref) }

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	// The stack tagged, a newer image built on it.
	if built, err := docker.BuildStack(ctx, "", r, t.TempDir(), &out); err != nil || built {
		t.Fatalf("BuildStack with the stack there = %v, %v; want nothing built (output %q)", built, err, out.String())
	}
	if got := id(r.Image); got != stack {
		t.Fatalf("after BuildStack %s is %s, want the imported stack %s", r.Image, got, stack)
	}
	// The stack's tag on the image built on it: the stack is untagged (and,
	// with a child, hidden from a plain image list).
	dockerCLI(nil, "tag", derived, r.Image)
	if built, err := docker.BuildStack(ctx, "", r, t.TempDir(), &out); err != nil || built {
		t.Fatalf("BuildStack with the tag on a derived image = %v, %v; want nothing built (output %q)", built, err, out.String())
	}
	if got := id(r.Image); got != stack {
		t.Fatalf("after BuildStack %s is %s, want the imported stack %s back, not %s", r.Image, got, stack, id(derived))
	}
}
