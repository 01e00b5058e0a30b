package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/strata-paas/strata/api"
)

// ImageBuilder builds images from Dockerfiles with the engine's build API
// (the classic builder, which Docker 20.10 engines run without BuildKit),
// for the stager (docs/containers.md, "Dockerfile builds"). The engine has no
// registry: a build never pulls, and the stager checks first that the engine
// has every image the Dockerfile starts from (HasImage). It is safe for
// concurrent use.
type ImageBuilder struct {
	host string

	once sync.Once
	cli  *client.Client
	err  error
}

// NewImageBuilder returns a builder using the engine at host ("" =
// DOCKER_HOST or the default socket). It connects on first use, so a
// builder without an engine starts and fails only the builds that need one.
func NewImageBuilder(host string) *ImageBuilder { return &ImageBuilder{host: host} }

func (b *ImageBuilder) client() (*client.Client, error) {
	b.once.Do(func() {
		opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
		if b.host != "" {
			opts = append(opts, client.WithHost(b.host))
		}
		b.cli, b.err = client.NewClientWithOpts(opts...)
	})
	if b.err != nil {
		return nil, api.Errorf(api.EUnavailable, "docker: %v", b.err)
	}
	return b.cli, nil
}

// Close closes the engine connection.
func (b *ImageBuilder) Close() error {
	if b.cli != nil {
		return b.cli.Close()
	}
	return nil
}

// HasImage reports whether the engine has image ref. An engine that does
// not answer is EUnavailable.
func (b *ImageBuilder) HasImage(ctx context.Context, ref string) (bool, error) {
	cli, err := b.client()
	if err != nil {
		return false, err
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		if cerrdefs.IsInvalidArgument(err) {
			return false, api.Errorf(api.EInvalid, "%q is not an image reference", ref)
		}
		return false, api.Errorf(api.EUnavailable, "no Docker engine answers on the builder: %v", err)
	}
	return true, nil
}

// intermediate matches the classic builder's " ---> <id>" lines: the image
// of each step, which a failed build leaves behind.
var intermediate = regexp.MustCompile(`^ ---> ([0-9a-f]{12,64})\s*$`)

// BuildImage builds the Dockerfile at the root of buildContext (a tar,
// optionally gzip-compressed) with labels (each costs the classic builder a
// step of its own: keep them few), limited to memoryMB (0 = no
// limit), never pulling; each line of the build's output goes to out as it
// comes. The image is written to save as a `docker save` tarball of its id
// (no tag: whoever loads it tags it), then removed from the engine with the
// steps' images, so the builder keeps nothing. A step that fails, or a base
// image the engine lacks, is EInvalid with the engine's message; an engine
// that does not answer is EUnavailable.
func (b *ImageBuilder) BuildImage(ctx context.Context, buildContext io.Reader, labels map[string]string, memoryMB int, out, save io.Writer) error {
	cli, err := b.client()
	if err != nil {
		return err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tag := "strata/build:" + hex.EncodeToString(nonce[:])
	opts := build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, PullParent: false,
		Dockerfile: "Dockerfile", Labels: labels, Version: build.BuilderV1,
	}
	if memoryMB > 0 {
		opts.Memory = int64(memoryMB) << 20
		opts.MemorySwap = opts.Memory
	}
	resp, err := cli.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return api.Errorf(api.EUnavailable, "no Docker engine answers on the builder: %v", err)
	}
	defer resp.Body.Close()
	var last string // the last step's image: what a failed build leaves
	cleanup := func(ref string) {
		if ref == "" {
			return
		}
		// The untagged parents (the steps) go with it; the base images,
		// tagged, stay. A build cut off mid-step still has the step's
		// container on the image for a moment (a conflict): retry.
		rctx := context.WithoutCancel(ctx)
		for range 40 {
			_, err := cli.ImageRemove(rctx, ref, image.RemoveOptions{PruneChildren: true})
			if err == nil || cerrdefs.IsNotFound(err) || !cerrdefs.IsConflict(err) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	buildErr := decodeBuild(resp.Body, out, func(line string) {
		if m := intermediate.FindStringSubmatch(line); m != nil {
			last = m[1]
		}
	})
	if buildErr != nil {
		cleanup(last)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return buildErr
	}
	defer cleanup(tag)
	ins, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		return api.Errorf(api.EUnavailable, "docker: inspect the built image: %v", err)
	}
	rc, err := cli.ImageSave(ctx, []string{ins.ID})
	if err != nil {
		return api.Errorf(api.EUnavailable, "docker: save the built image: %v", err)
	}
	defer rc.Close()
	if _, err := io.Copy(save, rc); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("docker: save the built image: %w", err)
	}
	return nil
}

// decodeBuild copies the text of a build's JSON message stream to out, calls
// each for every whole line, and returns the error the build reports as
// EInvalid (the app's Dockerfile failed), or a broken stream as
// EUnavailable.
func decodeBuild(r io.Reader, out io.Writer, each func(line string)) error {
	var partial string
	reported, err := decodeStream(r, func(text string) {
		_, _ = io.WriteString(out, text)
		partial += text
		for {
			i := strings.IndexByte(partial, '\n')
			if i < 0 {
				break
			}
			each(partial[:i])
			partial = partial[i+1:]
		}
	})
	if err != nil {
		return api.Errorf(api.EUnavailable, "docker: the build's output broke off: %v", err)
	}
	if reported != "" {
		return api.Errorf(api.EInvalid, "the Dockerfile build failed: %s", strings.TrimSpace(reported))
	}
	return nil
}
