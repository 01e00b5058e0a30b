package client

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/strata-paas/strata/api"
)

// PushOptions tune Push.
type PushOptions struct {
	Create bool // create the app if it does not exist
	Wait   bool // wait until the new release's instances are healthy
	// IgnoreManifest tells the controller not to apply the manifest in the
	// archive (strata push --no-manifest).
	IgnoreManifest bool
	// Buildpacks names buildpacks to run in order (strata push -b).
	Buildpacks []string
	// NoCache builds without the app's build cache.
	NoCache bool
	// Image deploys an image the nodes' engines have (the archive is then
	// empty); ImageFile says the archive is a `docker save` tarball.
	Image     string
	ImageFile bool
	// Size, when > 0, is sent as the upload's Content-Length.
	Size int64
	// OnEvent receives build output and status lines as they arrive.
	OnEvent func(api.DeployEvent)
}

// pushLine is one NDJSON line of the push stream.
type pushLine struct {
	Type   string            `json:"type"`
	Line   string            `json:"line"`
	Result *api.DeployResult `json:"result"`
	Error  *api.Error        `json:"error"`
}

// MaxPushLine is the longest accepted line of a push stream.
const MaxPushLine = 1 << 20

// Push uploads archive (a gzip-compressed tar of the app's source), streams
// the build, and returns the deploy's result. A failed build returns an
// api.EBuildFailed *api.Error carrying the reason.
func (c *Client) Push(ctx context.Context, app string, archive io.Reader, opts PushOptions) (*api.DeployResult, error) {
	q := url.Values{}
	if opts.Create {
		q.Set("create", "true")
	}
	if opts.Wait {
		q.Set("wait", "true")
	}
	if opts.IgnoreManifest {
		q.Set("ignore_manifest", "true")
	}
	for _, b := range opts.Buildpacks {
		q.Add("buildpack", b)
	}
	if opts.Image != "" {
		q.Set("docker_image", opts.Image)
	}
	if opts.ImageFile {
		q.Set("docker_image_file", "true")
	}
	if opts.NoCache {
		q.Set("no_cache", "true")
	}
	path := appPath(app, "/push")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	res, err := c.do(ctx, request{method: http.MethodPost, path: path, body: archive, size: opts.Size, ctype: "application/gzip"})
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), MaxPushLine)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l pushLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, api.Errorf(api.EInternal, "the API sent a malformed push line: %v — check that %s is a Strata API", err, c.base)
		}
		switch l.Type {
		case api.DeployEventLog, api.DeployEventStatus:
			if opts.OnEvent != nil {
				opts.OnEvent(api.DeployEvent{Type: l.Type, Line: l.Line})
			}
		case "result":
			if l.Result == nil {
				l.Result = &api.DeployResult{}
			}
			return l.Result, nil
		case "error":
			if l.Error == nil || l.Error.Code == "" {
				return nil, api.Errorf(api.EInternal, "the push failed without a reason — see the stratad log")
			}
			return nil, l.Error
		}
		// Unknown line types come from newer servers: ignore them.
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return nil, api.Errorf(api.EUnavailable, "the push stream broke: %v — the deploy may still finish; check strata app %s", err, app)
	}
	return nil, api.Errorf(api.EUnavailable, "the API closed the push stream before the deploy finished — check strata app %s", app)
}
