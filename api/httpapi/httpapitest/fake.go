// Package httpapitest provides in-memory fake services for testing the REST
// API, its client and the CLI without a controller.
//
// Fake implements api.AuthService, api.AppService, api.DeployService,
// api.LogService, api.LifecycleService, api.OperateService, api.RouteService
// and api.BlobStore with simple, deterministic behaviour and is safe for
// concurrent use. It has no placement, certificate or git service: Services
// answers not_supported for those (tests set their own).
package httpapitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
)

// Tokens known to a new Fake.
const (
	AdminToken = "admin-token"
	UserToken  = "user-token"
)

// Push records one Deploy call.
type Push struct {
	App    string
	Source []byte
	Create bool
	Wait   bool
	// IgnoreManifest is strata push --no-manifest; the fake never applies
	// manifests (the controller does, api/controller/manifest.go).
	IgnoreManifest bool
}

// Fake is a scripted, in-memory implementation of the API's services.
type Fake struct {
	mu     sync.Mutex
	tokens map[string]*api.Principal
	apps   map[string]*api.AppDetail
	blobs  map[api.BlobRef][]byte
	logs   []api.LogEnvelope
	subs   map[chan api.LogEnvelope]api.LogQuery
	pushes []Push
	// lifecycle state (lifecycle.go)
	releases map[string][]*api.Release // app name → releases, oldest first
	events   map[string][]*api.Event   // app name → events, oldest first
	scales   []api.ScaleRequest
	routes   map[string]*api.RouteInfo // host+path → mapped route (routes.go)
	now      func() time.Time

	// BuildOutput is emitted as log events by Deploy.
	BuildOutput []string
	// BuildFailure, if set, makes Deploy fail with EBuildFailed and this
	// message after emitting BuildOutput.
	BuildFailure string
	// DeployErr, if set, is returned by Deploy before any progress.
	DeployErr error
	// Nodes is returned by NodeList.
	Nodes []api.Node
}

var (
	_ api.AuthService   = (*Fake)(nil)
	_ api.AppService    = (*Fake)(nil)
	_ api.DeployService = (*Fake)(nil)
	_ api.LogService    = (*Fake)(nil)
	_ api.BlobStore     = (*Fake)(nil)
)

// New returns a Fake knowing AdminToken (an admin) and UserToken.
func New() *Fake {
	return &Fake{
		tokens: map[string]*api.Principal{
			AdminToken: {UserID: "u-admin", Name: "admin", Admin: true},
			UserToken:  {UserID: "u-dev", Name: "dev"},
		},
		apps:        map[string]*api.AppDetail{},
		blobs:       map[api.BlobRef][]byte{},
		subs:        map[chan api.LogEnvelope]api.LogQuery{},
		releases:    map[string][]*api.Release{},
		events:      map[string][]*api.Event{},
		now:         func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
		BuildOutput: []string{"-----> Detected fake buildpack", "-----> Compiled"},
	}
}

// Services returns the Fake as httpapi.Services; Users, Orgs, Placement,
// Certificates and Git are httpapi.Unsupported.
func (f *Fake) Services() httpapi.Services {
	return httpapi.Services{
		Auth: f, Apps: f, Deploy: f, Logs: f, Lifecycle: f, Operate: f, Routes: f, Blobs: f,
		Nodes:        httpapi.NodeListFunc(f.NodeList),
		Placement:    httpapi.Unsupported{What: "managing placement and node drain", Hint: "use a stratad controller"},
		Users:        httpapi.Unsupported{What: "password login and users", Hint: "use a stratad controller"},
		Orgs:         httpapi.Unsupported{What: "orgs, spaces and roles", Hint: "use a stratad controller"},
		Quotas:       httpapi.Unsupported{What: "quotas", Hint: "use a stratad controller"},
		Buildpacks:   httpapi.Unsupported{What: "registering buildpacks", Hint: "use a stratad controller"},
		Domains:      httpapi.Unsupported{What: "domains", Hint: "use a stratad controller"},
		Certificates: httpapi.Unsupported{What: "managing TLS certificates", Hint: "start stratad with a secret key file (--secret-key-file)"},
		Git:          httpapi.Unsupported{What: "git push", Hint: "use strata push"},
	}
}

// NodeList returns f.Nodes.
func (f *Fake) NodeList() []api.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Node(nil), f.Nodes...)
}

// Authenticate implements api.AuthService.
func (f *Fake) Authenticate(_ context.Context, token string) (*api.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.tokens[token]
	if !ok {
		return nil, api.Errorf(api.EUnauthorized, "the API token is not valid — run strata login again")
	}
	cp := *p
	return &cp, nil
}

// AddApp adds an app directly, as if it had been created and deployed.
func (f *Fake) AddApp(d api.AppDetail) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := d
	f.apps[d.Name] = &cp
}

// CreateApp implements api.AppService.
func (f *Fake) CreateApp(_ context.Context, name string) (*api.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.createLocked(name)
}

func (f *Fake) createLocked(name string) (*api.App, error) {
	if err := api.ValidateAppName(name); err != nil {
		return nil, err
	}
	if _, ok := f.apps[name]; ok {
		return nil, api.Errorf(api.EConflict, "app %q already exists — choose another name", name)
	}
	now := f.now()
	d := &api.AppDetail{App: api.App{ID: "app-" + name, SpaceID: "space-1", Name: name, State: api.AppStarted, CreatedAt: now, UpdatedAt: now}}
	d.Processes = []api.Process{{AppID: d.ID, Type: "web", Instances: 1, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB}}
	f.apps[name] = d
	app := d.App
	return &app, nil
}

// ListApps implements api.AppService.
func (f *Fake) ListApps(context.Context) ([]*api.AppSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*api.AppSummary
	for _, d := range f.apps {
		s := &api.AppSummary{App: d.App}
		for _, in := range d.Instances {
			if in.State == api.InstanceRunning {
				s.Running++
			}
		}
		for _, p := range d.Processes {
			if d.CurrentRelease > 0 { // as the controller: nothing is desired before a release
				s.Desired += p.Instances
			}
		}
		if len(d.URLs) > 0 {
			s.URL = d.URLs[0]
		}
		out = append(out, s)
	}
	return out, nil
}

// AppDetail implements api.AppService.
func (f *Fake) AppDetail(_ context.Context, name string) (*api.AppDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.apps[name]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "app %q not found — see strata apps", name)
	}
	cp := *d
	return &cp, nil
}

// DeleteApp implements api.AppService.
func (f *Fake) DeleteApp(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[name]; !ok {
		return api.Errorf(api.ENotFound, "app %q not found — see strata apps", name)
	}
	delete(f.apps, name)
	return nil
}

// PurgeCache implements api.AppService; the fake has no build cache.
func (f *Fake) PurgeCache(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[name]; !ok {
		return api.Errorf(api.ENotFound, "app %q not found — see strata apps", name)
	}
	return nil
}

// Deploy implements api.DeployService: it reads the whole source, emits
// BuildOutput and a status line, and releases a new version whose URL is
// http://<app>.localhost:8080.
func (f *Fake) Deploy(_ context.Context, req api.DeployRequest) (*api.DeployResult, error) {
	src, err := io.ReadAll(req.Source)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.pushes = append(f.pushes, Push{App: req.App, Source: src, Create: req.CreateApp, Wait: req.Wait, IgnoreManifest: req.IgnoreManifest})
	if f.DeployErr != nil {
		err := f.DeployErr
		f.mu.Unlock()
		return nil, err
	}
	if _, ok := f.apps[req.App]; !ok {
		if !req.CreateApp {
			f.mu.Unlock()
			return nil, api.Errorf(api.ENotFound, "app %q not found — create it with strata apps create %s", req.App, req.App)
		}
		if _, err := f.createLocked(req.App); err != nil {
			f.mu.Unlock()
			return nil, err
		}
	}
	out, failure := f.BuildOutput, f.BuildFailure
	f.mu.Unlock()

	progress := func(typ, line string) {
		if req.Progress != nil {
			req.Progress(api.DeployEvent{Type: typ, Line: line})
		}
	}
	for _, l := range out {
		progress(api.DeployEventLog, l)
	}
	if failure != "" {
		return nil, api.Errorf(api.EBuildFailed, "%s", failure)
	}
	progress(api.DeployEventStatus, "waiting for 1/1 instances")

	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.apps[req.App]
	d.CurrentRelease++
	url := "http://" + req.App + ".localhost:8080"
	d.URLs = []string{url}
	rel := &api.Release{ID: "rel-" + req.App, AppID: d.ID, Version: d.CurrentRelease, Processes: map[string]string{"web": "./app"},
		Description: "Deploy build build-1 (fake)", Actor: "admin", CreatedAt: f.now()}
	if d.Release != nil {
		rel.Env = d.Release.Env
	}
	d.Release = rel
	f.releases[req.App] = append(f.releases[req.App], rel)
	if len(d.Processes) == 0 {
		d.Processes = []api.Process{{AppID: d.ID, Type: "web", Instances: 1, MemoryMB: api.DefaultMemoryMB, DiskMB: api.DefaultDiskMB}}
	}
	d.Instances = []*api.Instance{{ID: "inst-0", AppID: d.ID, Process: "web", Release: rel.Version, NodeID: "node-1", State: api.InstanceRunning, StartedAt: f.now()}}
	return &api.DeployResult{
		Build:   &api.Build{ID: "build-1", AppID: d.ID, State: api.BuildStaged, Buildpack: "fake"},
		Release: rel, URLs: []string{url}, Running: 1, Desired: 1,
	}, nil
}

// Pushes returns the Deploy calls seen so far.
func (f *Fake) Pushes() []Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Push(nil), f.pushes...)
}

// AddLog stores a log line (for recent queries) and sends it to followers.
func (f *Fake) AddLog(e api.LogEnvelope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, e)
	for ch, q := range f.subs {
		if matches(q, e) {
			select {
			case ch <- e:
			default: // a slow follower drops lines in the fake
			}
		}
	}
}

// Followers returns how many Logs calls are following now.
func (f *Fake) Followers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func matches(q api.LogQuery, e api.LogEnvelope) bool {
	return e.App == q.App && strings.HasPrefix(e.Source, q.Source)
}

// Logs implements api.LogService.
func (f *Fake) Logs(ctx context.Context, q api.LogQuery, fn func(api.LogEnvelope) error) error {
	f.mu.Lock()
	if _, ok := f.apps[q.App]; !ok {
		f.mu.Unlock()
		return api.Errorf(api.ENotFound, "app %q not found — see strata apps", q.App)
	}
	var recent []api.LogEnvelope
	for _, e := range f.logs {
		if matches(q, e) {
			recent = append(recent, e)
		}
	}
	n := q.Recent
	if n == 0 {
		n = 100
	}
	if len(recent) > n {
		recent = recent[len(recent)-n:]
	}
	var ch chan api.LogEnvelope
	if q.Follow {
		ch = make(chan api.LogEnvelope, 1024)
		f.subs[ch] = q
		defer func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		}()
	}
	f.mu.Unlock()
	for _, e := range recent {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !q.Follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-ch:
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// Put implements api.BlobStore.
func (f *Fake) Put(_ context.Context, r io.Reader) (api.BlobRef, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	f.mu.Lock()
	f.blobs[ref] = b
	f.mu.Unlock()
	return ref, nil
}

// Get implements api.BlobStore.
func (f *Fake) Get(_ context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	if !ref.Valid() {
		return nil, api.Errorf(api.EInvalid, "blob ref %q is not valid", ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.blobs[ref]
	if !ok {
		return nil, api.Errorf(api.ENotFound, "blob %s not found", ref)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Delete implements api.BlobStore.
func (f *Fake) Delete(_ context.Context, ref api.BlobRef) error {
	if !ref.Valid() {
		return api.Errorf(api.EInvalid, "blob ref %q is not valid", ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.blobs, ref)
	return nil
}
