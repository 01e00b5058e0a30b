package stager

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/archive"
	"github.com/strata-paas/strata/builder"
)

// Registered returns the classic buildpacks a build job lists (those admins
// registered with strata buildpacks create), in order. Each archive is
// fetched with get and unpacked once per blob digest under
// WorkDir/_buildpacks, with the limits of source archives; builds copy it
// into their sandbox as they do every classic buildpack.
func (s *Stager) Registered(ctx context.Context, regs []api.RegisteredBuildpack, get func(context.Context, api.BlobRef) (io.ReadCloser, error)) ([]builder.Buildpack, error) {
	var out []builder.Buildpack
	for _, r := range regs {
		if err := api.ValidateBuildpackName(r.Name); err != nil {
			return nil, err
		}
		if !r.Blob.Valid() {
			return nil, api.Errorf(api.EInvalid, "buildpack %s has no archive", r.Name)
		}
		digest := strings.TrimPrefix(string(r.Blob), "sha256:")
		dir := filepath.Join(s.cfg.WorkDir, "_buildpacks", digest)
		s.bpMu.Lock()
		_, err := os.Stat(filepath.Join(dir, "bin"))
		if err != nil {
			err = s.unpack(ctx, r.Blob, dir, get)
		}
		s.bpMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("buildpack %s: %w", r.Name, err)
		}
		bp, err := builder.NewClassic(r.Name, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, bp)
	}
	return out, nil
}

// unpack extracts a buildpack archive into dir through a temporary
// directory, so dir holds a whole buildpack or nothing.
func (s *Stager) unpack(ctx context.Context, ref api.BlobRef, dir string, get func(context.Context, api.BlobRef) (io.ReadCloser, error)) error {
	rc, err := get(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := archive.Extract(ctx, rc, tmp, s.cfg.Limits); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
