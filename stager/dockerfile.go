package stager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/builder"
)

// ImageBuilder builds an app's Dockerfile into an image with a Docker
// engine; package deploy/driver/docker's *ImageBuilder is the one stratad
// uses.
type ImageBuilder interface {
	// HasImage reports whether the engine has image ref.
	HasImage(ctx context.Context, ref string) (bool, error)
	// BuildImage builds the Dockerfile at the root of buildContext (a
	// gzip-compressed tar) with labels and a memory limit, never pulling,
	// streaming the build's output to out, and writes the image to save as
	// a `docker save` tarball. A failure caused by the Dockerfile is
	// EInvalid with a message for the user.
	BuildImage(ctx context.Context, buildContext io.Reader, labels map[string]string, memoryMB int, out, save io.Writer) error
}

// labelBuild labels an image built from a Dockerfile with its build id
// (one label only: the engine's classic builder spends a step on each).
const labelBuild = "io.strata.build"

// DefaultStack is the image a Dockerfile is told to start from when it
// names one the engine lacks: the stack of `make stack`.
const DefaultStack = "strata/stack:bookworm"

func isDockerfile(bps []builder.Buildpack) bool {
	for _, bp := range bps {
		if _, ok := bp.(*builder.DockerfileBuildpack); ok {
			return true
		}
	}
	return false
}

// stageDockerfile builds the app in src from its Dockerfile into an image
// (bctx bounds the build, ctx is the caller's): every image the Dockerfile
// starts from must be on the engine (nothing is pulled — no registry is
// reachable), the build's output streams to out, and the image comes back
// as a `docker save` tarball in Result.DropletPath with the buildpack
// api.BuildpackDockerfile, which the controller releases as an image
// (ImageBlob). The process types are the image's own entrypoint as web,
// overridden and extended by a Procfile.
func (s *Stager) stageDockerfile(ctx, bctx context.Context, job api.BuildJob, src string, bps []builder.Buildpack, out io.Writer, timeout time.Duration) (*Result, error) {
	start := time.Now()
	fail := func(f api.BuildFailure, format string, args ...any) (*Result, error) {
		res := failed(f, format, args...)
		fmt.Fprintf(out, "       %s\n", res.Reason)
		s.log.Info("stage.failed", "build", job.BuildID, "failure", res.Failure, "reason", res.Reason, "took", time.Since(start))
		return res, nil
	}
	if len(bps) > 1 {
		return fail(api.FailCompile, "the dockerfile buildpack builds an image and cannot be combined with other buildpacks — name it alone")
	}
	if s.cfg.Images == nil {
		return fail(api.FailNoBuildpack, "the app has a Dockerfile, but this builder has no Docker engine to build it — push an image with --docker-image-file instead, or add a file a buildpack looks for")
	}
	df, err := builder.ReadDockerfile(src)
	var ae *builder.AppError
	if errors.As(err, &ae) {
		return fail(api.FailCompile, "%s", ae.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("stager: %w", err)
	}
	for _, img := range df.Images {
		ok, err := s.cfg.Images.HasImage(bctx, img)
		if api.ErrorCode(err) == api.EInvalid {
			return fail(api.FailCompile, "%s: %s", builder.DockerfileName, api.ErrorMessage(err))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Redelivering the job would not help the user more than
			// saying so.
			return fail(api.FailInternal, "the builder's Docker engine does not answer (%s) — push again once it runs", api.ErrorMessage(err))
		}
		if !ok {
			return fail(api.FailCompile, "%s starts from %s, which the builder's Docker engine does not have, and no registry is reachable to pull it — start FROM %s (built by `make stack` or `stratad stack build`), or `docker load` %s on the builder", builder.DockerfileName, img, DefaultStack, img)
		}
	}
	rel, err := bps[0].Release(bctx, nil)
	if err != nil {
		return nil, err
	}
	procs := rel.Processes
	fromFile, err := builder.ReadProcfile(src)
	if errors.As(err, &ae) {
		return fail(api.FailCompile, "%s", ae.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("stager: %w", err)
	}
	for k, v := range fromFile {
		procs[k] = v
	}

	f, err := os.CreateTemp(s.cfg.WorkDir, "image-*.tar")
	if err != nil {
		return nil, fmt.Errorf("stager: image: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	fmt.Fprintf(out, "-----> Building the image with the Docker engine\n")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Pack(bctx, pw, src, archive.PackOptions{})) }()
	labels := map[string]string{labelBuild: job.BuildID}
	err = s.cfg.Images.BuildImage(bctx, pr, labels, s.cfg.BuildMemoryMB, out, f)
	pr.Close() // a build that stopped reading ends the packing
	timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case timedOut:
		return fail(api.FailTimeout, "timed out after %s — make the build faster or raise the staging timeout", timeout)
	case api.ErrorCode(err) == api.EInvalid:
		return fail(api.FailCompile, "%s", api.ErrorMessage(err))
	case err != nil:
		return nil, fmt.Errorf("stager: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("stager: image: %w", err)
	}
	info := api.StagingInfo{Buildpack: api.BuildpackDockerfile, Processes: procs, Stack: job.Stack}
	for _, t := range sortedKeys(procs) {
		cmd := procs[t]
		if cmd == "" {
			cmd = "(the image's entrypoint)"
		}
		fmt.Fprintf(out, "       %s: %s\n", t, cmd)
	}
	keep = true
	s.log.Info("stage.staged", "build", job.BuildID, "buildpack", info.Buildpack, "took", time.Since(start))
	return &Result{DropletPath: f.Name(), Info: info}, nil
}
