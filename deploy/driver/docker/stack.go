package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/strata-paas/strata/api"
)

// LabelStackContent is the content hash of the recipe a stack image was
// built from (StackRecipe.Content).
const LabelStackContent = "io.strata.stack.content"

// StackRecipe is how a stack image is made: a Debian root file system by
// mmdebstrap, imported as an image.
type StackRecipe struct {
	Image   string   // the tag; default DefaultStackImage
	Suite   string   // Debian suite; default bookworm
	Variant string   // mmdebstrap variant; default minbase
	Include []string // extra packages
	Mirror  string   // "" = the host's apt sources
}

// DefaultStackRecipe is the recipe of strata/stack:bookworm: minbase with
// CA certificates, time zones and python3 (which python droplets' virtual
// environments and static sites run on; Go droplets are static and Node
// droplets carry their node binary).
func DefaultStackRecipe() StackRecipe {
	return StackRecipe{Image: DefaultStackImage, Suite: "bookworm", Variant: "minbase",
		Include: []string{"ca-certificates", "tzdata", "python3"}}
}

func (r *StackRecipe) setDefaults() {
	d := DefaultStackRecipe()
	if r.Image == "" {
		r.Image = d.Image
	}
	if r.Suite == "" {
		r.Suite = d.Suite
	}
	if r.Variant == "" {
		r.Variant = d.Variant
	}
}

// Content is the hash of everything that makes the stack what it is; two
// builds of one content are the same stack, so the second is skipped.
func (r StackRecipe) Content() string {
	r.setDefaults()
	inc := slices.Clone(r.Include)
	slices.Sort(inc)
	b, _ := json.Marshal(struct {
		Format                 int
		Suite, Variant, Mirror string
		Include                []string
	}{1, r.Suite, r.Variant, r.Mirror, inc})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// BuildStack makes the stack image r describes unless the engine at host
// ("" = DOCKER_HOST or the default socket) already has the stack of r's
// content (the image it imported: images built on it carry its labels
// too), which it then only tags. It runs mmdebstrap (the Debian
// package; it must be installed) as root into a tarball under workDir and
// imports it; out receives mmdebstrap's output. It reports whether it
// built.
func BuildStack(ctx context.Context, host string, r StackRecipe, workDir string, out io.Writer) (bool, error) {
	r.setDefaults()
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return false, api.Errorf(api.EUnavailable, "docker: %v", err)
	}
	defer cli.Close()
	content := r.Content()
	imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelStackContent+"="+content))})
	if err != nil {
		return false, api.Errorf(api.EUnavailable, "no Docker engine answers: %v — start dockerd", err)
	}
	// Every image built from the stack inherits its labels (the app images,
	// droplet images, strata:dev): the stack is the one that was imported.
	for _, im := range imgs {
		ins, err := cli.ImageInspect(ctx, im.ID)
		if err != nil || !importedStack(ins) {
			continue
		}
		if !slices.Contains(im.RepoTags, r.Image) {
			if err := cli.ImageTag(ctx, im.ID, r.Image); err != nil {
				return false, api.Errorf(api.EUnavailable, "docker: tag %s: %v", r.Image, err)
			}
		}
		fmt.Fprintf(out, "stack %s is up to date (content %s)\n", r.Image, content[:12])
		return false, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return false, api.Errorf(api.EUnavailable, "mmdebstrap is not installed — apt-get install mmdebstrap")
	}
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return false, fmt.Errorf("stack: %w", err)
	}
	dir, err := os.MkdirTemp(workDir, "stack-")
	if err != nil {
		return false, fmt.Errorf("stack: %w", err)
	}
	defer os.RemoveAll(dir)
	tarPath := filepath.Join(dir, "rootfs.tar")
	args := []string{"--variant=" + r.Variant, "--mode=root", "--format=tar"}
	if len(r.Include) > 0 {
		args = append(args, "--include="+strings.Join(r.Include, ","))
	}
	args = append(args, r.Suite, tarPath)
	if r.Mirror != "" {
		args = append(args, r.Mirror)
	}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(out, "building stack %s: mmdebstrap %s\n", r.Image, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return false, api.Errorf(api.EUnavailable, "mmdebstrap failed: %v — see its output above", err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		return false, fmt.Errorf("stack: %w", err)
	}
	defer f.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, r.Image, image.ImportOptions{Changes: []string{
		"LABEL " + LabelManaged + "=true",
		"LABEL " + LabelStackContent + "=" + content,
		"LABEL " + LabelStack + "=" + r.Suite,
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV LANG=C.UTF-8",
		`CMD ["/bin/sh"]`,
	}})
	if err != nil {
		return false, api.Errorf(api.EUnavailable, "docker: import the stack: %v", err)
	}
	defer rc.Close()
	if err := readStream(rc); err != nil {
		return false, api.Errorf(api.EUnavailable, "docker: import the stack: %v", err)
	}
	fmt.Fprintf(out, "stack %s built (content %s)\n", r.Image, content[:12])
	return true, nil
}

// importedStack reports whether ins is a stack as BuildStack imports it (one
// layer, imported from a tarball), not an image built on one.
func importedStack(ins image.InspectResponse) bool {
	return ins.RootFS.Type == "layers" && len(ins.RootFS.Layers) == 1 && strings.HasPrefix(ins.Comment, "Imported from ")
}
