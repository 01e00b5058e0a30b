package controller

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"

	"github.com/strata-paas/strata/api"
)

var _ api.BuildpackService = (*Buildpacks)(nil)

// MaxBuildpackBytes caps an uploaded buildpack archive.
const MaxBuildpackBytes = 256 << 20

// Buildpacks registers classic buildpacks (api.BuildpackService): admins
// upload a buildpack's directory as a gzip tar, stored as a blob; every build
// job lists them in order, and builders fetch them (docs/buildpacks.md).
type Buildpacks struct {
	log   *slog.Logger
	store BuildpackStore
	blobs api.BlobStore
}

// ListBuildpacks lists the registered buildpacks in detection order (any
// logged-in user: they choose them by name).
func (s *Buildpacks) ListBuildpacks(ctx context.Context) ([]api.BuildpackInfo, error) {
	if api.PrincipalFrom(ctx) == nil {
		return nil, api.Errorf(api.EUnauthorized, "not logged in")
	}
	return s.store.ListBuildpacks(ctx)
}

// PutBuildpack checks and stores a buildpack archive (admin).
func (s *Buildpacks) PutBuildpack(ctx context.Context, name string, position int, archive io.Reader, create bool) (*api.BuildpackInfo, error) {
	if err := requireAdmin(ctx, "registering buildpacks"); err != nil {
		return nil, err
	}
	if err := api.ValidateBuildpackName(name); err != nil {
		return nil, err
	}
	if position < 0 {
		return nil, api.Errorf(api.EInvalid, "position %d is not valid — give 1 for first, or leave it out for last", position)
	}
	tmp, err := os.CreateTemp("", "strata-buildpack-*.tgz")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(archive, MaxBuildpackBytes+1))
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "cannot read the buildpack archive: %v", err)
	}
	if n > MaxBuildpackBytes {
		return nil, api.Errorf(api.EInvalid, "the buildpack archive is larger than %d MiB — leave out what compile does not need", MaxBuildpackBytes>>20)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := checkBuildpackArchive(tmp); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ref, err := s.blobs.Put(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("store the buildpack: %w", err)
	}
	info, err := s.store.PutBuildpack(ctx, api.BuildpackInfo{Name: name, Position: position, Blob: ref}, create)
	if err != nil {
		return nil, err
	}
	s.log.Info("buildpack.put", "name", name, "position", info.Position, "blob", ref, "actor", api.ActorName(ctx))
	return info, nil
}

// checkBuildpackArchive reads a gzip tar and requires executable regular
// files bin/detect and bin/compile (the classic contract); builders unpack
// it with the limits of any source archive.
func checkBuildpackArchive(r io.Reader) error {
	bad := func(format string, args ...any) error {
		return api.Errorf(api.EInvalid, "not a buildpack archive: "+format+" — give the buildpack's directory, a .tgz or a .zip of it", args...)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return bad("not gzip")
	}
	tr := tar.NewReader(gz)
	found := map[string]bool{}
	for i := 0; ; i++ {
		if i > 100_000 {
			return bad("more than 100000 entries")
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad("%v", err)
		}
		name := path.Clean("/" + h.Name)[1:]
		if (name == "bin/detect" || name == "bin/compile") && h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
			found[name] = true
		}
	}
	for _, want := range []string{"bin/detect", "bin/compile"} {
		if !found[want] {
			return bad("no executable %s", want)
		}
	}
	return nil
}

// DeleteBuildpack removes a registered buildpack (admin); builds already
// running keep it.
func (s *Buildpacks) DeleteBuildpack(ctx context.Context, name string) error {
	if err := requireAdmin(ctx, "deleting buildpacks"); err != nil {
		return err
	}
	if err := api.ValidateBuildpackName(name); err != nil {
		return err
	}
	if err := s.store.DeleteBuildpack(ctx, name); err != nil {
		return err
	}
	s.log.Info("buildpack.deleted", "name", name, "actor", api.ActorName(ctx))
	return nil
}

// registered returns the build job's list of registered buildpacks.
func (s *Buildpacks) registered(ctx context.Context) ([]api.RegisteredBuildpack, error) {
	bps, err := s.store.ListBuildpacks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.RegisteredBuildpack, 0, len(bps))
	for _, b := range bps {
		out = append(out, api.RegisteredBuildpack{Name: b.Name, Blob: b.Blob})
	}
	return out, nil
}
