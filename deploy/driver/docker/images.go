package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

var (
	_ driver.DropletImager = (*Driver)(nil)
	_ driver.ImageRunner   = (*Driver)(nil)
)

// appImageRepo is the repository image-deploy tarballs are tagged in, by
// blob digest.
const appImageRepo = "strata/image"

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

// AppImage returns the image of an image deploy: ref, which the engine must
// have, or the image in the `docker save` tarball at path, loaded once per
// blob digest and tagged strata/image:<digest hex>. Its working dir is the
// app dir and its single exposed TCP port, if it has exactly one, the port
// the app listens on.
func (d *Driver) AppImage(ctx context.Context, ref string, blob api.BlobRef, path string) (*driver.DropletImage, error) {
	if blob != "" {
		if !blob.Valid() {
			return nil, api.Errorf(api.EInvalid, "image blob %q is not a sha256 blob reference", blob)
		}
		tag := appImageRepo + ":" + strings.TrimPrefix(string(blob), "sha256:")
		unlock := d.lockKey("image:" + string(blob))
		defer unlock()
		if _, err := d.cli.ImageInspect(ctx, tag); err != nil {
			if !cerrdefs.IsNotFound(err) {
				return nil, api.Errorf(api.EUnavailable, "docker driver: inspect %s: %v", tag, err)
			}
			if err := d.loadTagged(ctx, path, tag); err != nil {
				return nil, err
			}
		}
		ref = tag
	}
	if ref == "" || strings.HasPrefix(ref, "-") || strings.ContainsFunc(ref, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return nil, api.Errorf(api.EInvalid, "image reference %q is not an image name", ref)
	}
	ins, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, api.Errorf(api.EInvalid, "image %s is not on this node — no registry is reachable: load it into the node's engine, or push it as a tarball (--docker-image-file)", ref)
		}
		return nil, api.Errorf(api.EUnavailable, "docker driver: inspect %s: %v", ref, err)
	}
	out := &driver.DropletImage{Image: ref, AppDir: "/"}
	if ins.Config != nil {
		if ins.Config.WorkingDir != "" {
			out.AppDir = ins.Config.WorkingDir
		}
		var tcp []int
		for p := range ins.Config.ExposedPorts {
			if port, proto, _ := strings.Cut(string(p), "/"); proto == "" || proto == "tcp" {
				if n, err := strconv.Atoi(port); err == nil && n > 0 {
					tcp = append(tcp, n)
				}
			}
		}
		if len(tcp) == 1 {
			out.Port = tcp[0]
		}
	}
	return out, nil
}

// loadTagged loads the `docker save` tarball at path and tags the image it
// holds as tag. A tarball of other than one image is EInvalid.
func (d *Driver) loadTagged(ctx context.Context, path, tag string) error {
	f, err := os.Open(path)
	if err != nil {
		return api.Errorf(api.EUnavailable, "docker driver: %v", err)
	}
	defer f.Close()
	resp, err := d.cli.ImageLoad(ctx, f)
	if err != nil {
		return api.Errorf(api.EUnavailable, "docker driver: load the image tarball: %v", err)
	}
	defer resp.Body.Close()
	var loaded []string
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return api.Errorf(api.EInvalid, "docker driver: load the image tarball: %v", err)
		}
		if m.ErrorDetail != nil {
			return api.Errorf(api.EInvalid, "the image tarball does not load: %s — make it with docker save", m.ErrorDetail.Message)
		}
		for _, prefix := range []string{"Loaded image ID: ", "Loaded image: "} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(m.Stream), prefix); ok {
				loaded = append(loaded, v)
			}
		}
	}
	if len(loaded) != 1 {
		return api.Errorf(api.EInvalid, "the image tarball holds %d images (%v), want one — docker save one image", len(loaded), loaded)
	}
	if err := d.cli.ImageTag(ctx, loaded[0], tag); err != nil {
		return api.Errorf(api.EUnavailable, "docker driver: tag %s: %v", tag, err)
	}
	d.log.Info("docker.app_image_loaded", "image", loaded[0], "tag", tag)
	return nil
}

// readStream reads an engine progress stream (JSON messages) to its end and
// returns the first error it reports.
func readStream(r io.Reader) error {
	reported, err := decodeStream(r, nil)
	if err != nil {
		return err
	}
	if reported != "" {
		return fmt.Errorf("%s", reported)
	}
	return nil
}

// decodeStream reads an engine JSON message stream (a pull's, a load's, a
// build's) until its end or the first error a message reports, which it
// returns as reported; err is a stream that broke off. Each message's text
// before that goes to stream when it is not nil.
func decodeStream(r io.Reader, stream func(text string)) (reported string, err error) {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return "", nil
		} else if err != nil {
			return "", err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return m.ErrorDetail.Message, nil
		}
		if m.Error != "" {
			return m.Error, nil
		}
		if m.Stream != "" && stream != nil {
			stream(m.Stream)
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

// CollectImages removes this node's droplet images (those it loaded), and
// the strata/image tags of image-deploy tarballs, that no instance of this
// driver uses, keeping the Config.KeepImages most recently
// created ones so a restart or a rollback need not rebuild them. An image a
// container still uses stays (the engine refuses). It returns how many it
// removed.
func (d *Driver) CollectImages(ctx context.Context) (int, error) {
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelNode+"="+d.cfg.NodeID), filters.Arg("label", LabelDroplet))})
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "docker driver: list images: %v", err)
	}
	// Image deploys' tarballs, tagged by blob digest (they carry their own
	// labels, not ours): their strata tag is what goes.
	apps, err := d.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", appImageRepo))})
	if err != nil {
		return 0, api.Errorf(api.EUnavailable, "docker driver: list images: %v", err)
	}
	imgs = append(imgs, apps...)
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
		target := s.ID
		for _, t := range s.RepoTags {
			if strings.HasPrefix(t, appImageRepo+":") {
				target = t // untag; the image goes with its last tag
			}
		}
		if _, err := d.cli.ImageRemove(ctx, target, image.RemoveOptions{PruneChildren: true}); err != nil {
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
