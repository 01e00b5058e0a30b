package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/dropletimage"
)

// Labels of droplet images.
const (
	LabelDroplet = "io.strata.droplet" // the droplet's digest
	LabelStack   = "io.strata.stack"   // the stack image it was made from
)

var _ driver.DropletImager = (*Driver)(nil)

// dropletTag is the tag of a droplet's image.
func dropletTag(ref api.BlobRef) string {
	return "strata/droplet:" + strings.TrimPrefix(string(ref), "sha256:")
}

// DropletImage returns the droplet's image, loading it into the engine
// first if the engine lacks it: the stack image plus one layer with the
// droplet under /home/strata, written by package dropletimage and loaded with
// `docker load` (no registry). Images are cached by droplet digest; one
// build per digest runs at a time.
func (d *Driver) DropletImage(ctx context.Context, ref api.BlobRef, path string) (*driver.DropletImage, error) {
	if !ref.Valid() {
		return nil, api.Errorf(api.EInvalid, "droplet reference %q is not a sha256 blob reference", ref)
	}
	out := &driver.DropletImage{Image: dropletTag(ref), Root: dropletimage.DefaultRoot, AppDir: dropletimage.AppDir("")}
	unlock := d.lockKey("droplet:" + string(ref))
	defer unlock()
	if ins, err := d.cli.ImageInspect(ctx, out.Image); err == nil && ins.Config != nil && ins.Config.Labels[LabelDroplet] == string(ref) {
		return out, nil
	}
	stack, err := d.stackTarball(ctx)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(dropletimage.Write(pw, dropletimage.Options{
			Tag: out.Image, Base: stack, Droplet: path, UID: d.cfg.ImageUID, TempDir: d.cfg.ImageDir,
			Labels: map[string]string{LabelManaged: "true", LabelNode: d.cfg.NodeID, LabelDroplet: string(ref), LabelStack: d.cfg.StackImage},
		}))
	}()
	resp, err := d.cli.ImageLoad(ctx, pr)
	if err != nil {
		pr.CloseWithError(err)
		return nil, api.Errorf(api.EUnavailable, "docker driver: load the image of droplet %s: %v", ref, err)
	}
	defer resp.Body.Close()
	if err := readStream(resp.Body); err != nil {
		pr.CloseWithError(err)
		return nil, api.Errorf(api.EUnavailable, "docker driver: load the image of droplet %s: %v", ref, err)
	}
	d.log.Info("docker.droplet_image_loaded", "droplet", ref, "image", out.Image)
	return out, nil
}

// readStream reads an engine progress stream (JSON messages) to its end and
// returns the first error it reports.
func readStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return fmt.Errorf("%s", m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
	}
}

// stackTarball returns the path of the stack image as a `docker save`
// tarball in Config.ImageDir, saving it once per image id.
func (d *Driver) stackTarball(ctx context.Context) (string, error) {
	ins, err := d.cli.ImageInspect(ctx, d.cfg.StackImage)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", api.Errorf(api.EUnavailable, "the stack image %s is not on this node — build it with `stratad stack build` (or `make stack`)", d.cfg.StackImage)
		}
		return "", api.Errorf(api.EUnavailable, "docker driver: inspect %s: %v", d.cfg.StackImage, err)
	}
	unlock := d.lockKey("stack")
	defer unlock()
	id := strings.TrimPrefix(ins.ID, "sha256:")
	p := filepath.Join(d.cfg.ImageDir, "stack-"+id+".tar")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(d.cfg.ImageDir, 0o700); err != nil {
		return "", fmt.Errorf("docker driver: %w", err)
	}
	// Older stacks' tarballs go.
	if old, _ := filepath.Glob(filepath.Join(d.cfg.ImageDir, "stack-*.tar")); len(old) > 0 {
		for _, o := range old {
			_ = os.Remove(o)
		}
	}
	rc, err := d.cli.ImageSave(ctx, []string{ins.ID})
	if err != nil {
		return "", api.Errorf(api.EUnavailable, "docker driver: save %s: %v", d.cfg.StackImage, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(d.cfg.ImageDir, "stack-*.tmp")
	if err != nil {
		return "", fmt.Errorf("docker driver: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", api.Errorf(api.EUnavailable, "docker driver: save %s: %v", d.cfg.StackImage, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("docker driver: %w", err)
	}
	return p, nil
}

// lockKey serialises work on one key (a droplet's image, the stack
// tarball) and returns the unlock.
func (d *Driver) lockKey(key string) func() {
	d.mu.Lock()
	ch, ok := d.keys[key]
	if !ok {
		ch = make(chan struct{}, 1)
		d.keys[key] = ch
	}
	d.mu.Unlock()
	ch <- struct{}{}
	return func() { <-ch }
}

// CollectImages removes this node's droplet images (those it loaded) that no
// instance of this driver uses, keeping the Config.KeepImages most recently
// created ones so a restart or a rollback need not rebuild them. An image a
// container still uses stays (the engine refuses). It returns how many it
// removed.
func (d *Driver) CollectImages(ctx context.Context) (int, error) {
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelNode+"="+d.cfg.NodeID), filters.Arg("label", LabelDroplet))})
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "docker driver: list images: %v", err)
	}
	slices.SortFunc(imgs, func(a, b image.Summary) int { return int(b.Created - a.Created) })
	d.mu.Lock()
	inUse := func(s image.Summary) bool {
		for _, t := range s.RepoTags {
			if d.using[t] > 0 {
				return true
			}
		}
		return d.using[s.ID] > 0
	}
	var unused []image.Summary
	for _, s := range imgs {
		if !inUse(s) {
			unused = append(unused, s)
		}
	}
	d.mu.Unlock()
	removed := 0
	for i, s := range unused {
		if i < d.cfg.KeepImages {
			continue
		}
		if _, err := d.cli.ImageRemove(ctx, s.ID, image.RemoveOptions{PruneChildren: true}); err != nil {
			if !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
				d.log.Warn("docker.image_remove_failed", "image", s.ID, "err", err)
			}
			continue
		}
		d.log.Info("docker.image_removed", "image", s.RepoTags, "droplet", s.Labels[LabelDroplet])
		removed++
	}
	return removed, nil
}
