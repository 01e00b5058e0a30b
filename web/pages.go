package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

func spaceBase(org, space string) string {
	return "/orgs/" + url.PathEscape(org) + "/spaces/" + url.PathEscape(space)
}

// home sends the user to the apps of the default space, else of the first
// space they can see.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	orgs, err := c.svc.Orgs.ListOrgs(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var first string
	for _, o := range orgs {
		for _, s := range o.Spaces {
			if o.Name == "default" && s == "default" {
				http.Redirect(w, r, spaceBase(o.Name, s)+"/apps", http.StatusSeeOther)
				return
			}
			if first == "" {
				first = spaceBase(o.Name, s) + "/apps"
			}
		}
	}
	if first == "" {
		c.fail(w, r, api.Errorf(api.ENotFound, "you have no role in any space yet — ask an org manager to give you one"))
		return
	}
	http.Redirect(w, r, first, http.StatusSeeOther)
}

// switchSpace is the header's org/space switcher (a GET form: to=ORG/SPACE).
func (c *Console) switchSpace(w http.ResponseWriter, r *http.Request) {
	org, space, _ := strings.Cut(r.URL.Query().Get("to"), "/")
	t := api.Target{Org: org, Space: space}
	if org == "" || space == "" || t.Validate() != nil {
		c.fail(w, r, api.Errorf(api.EInvalid, "choose a space from the list"))
		return
	}
	http.Redirect(w, r, spaceBase(org, space)+"/apps", http.StatusSeeOther)
}

type appsData struct {
	page
	Apps []*api.AppSummary
}

func (c *Console) appsPage(w http.ResponseWriter, r *http.Request) {
	apps, err := c.svc.Apps.ListApps(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	t := api.TargetFrom(r.Context())
	d := appsData{page: c.basePage(w, r, "Apps in "+t.Org+"/"+t.Space), Apps: apps}
	c.render(w, http.StatusOK, "apps", d)
}

type envVar struct{ Name, Value string }

type appData struct {
	page
	App      *api.AppDetail
	Releases []*api.Release
	Events   []*api.Event
	Env      []envVar
	Reveal   bool
	Charts   []chart // the last hour, minute by minute
	// Errors of the parts of the page a role may not read (config vars
	// for auditors) or that failed; the rest of the page still shows.
	ReleasesErr, EventsErr, EnvErr string
}

func (c *Console) appPage(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("app")
	app, err := c.svc.Apps.AppDetail(ctx, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := appData{page: c.basePage(w, r, app.Name), App: app, Reveal: r.URL.Query().Get("reveal") == "env"}
	if d.Releases, err = c.svc.Lifecycle.Releases(ctx, name); err != nil {
		d.ReleasesErr = api.ErrorMessage(err)
	}
	if d.Events, err = c.svc.Lifecycle.Events(ctx, name, 20); err != nil {
		d.EventsErr = api.ErrorMessage(err)
	}
	if ms, err := c.svc.Metrics.Metrics(ctx, name); err == nil {
		d.Charts = charts(ms)
	}
	env, err := c.svc.Lifecycle.Env(ctx, name)
	if err != nil {
		d.EnvErr = api.ErrorMessage(err)
	}
	for k, v := range env {
		d.Env = append(d.Env, envVar{k, v})
	}
	sort.Slice(d.Env, func(i, j int) bool { return d.Env[i].Name < d.Env[j].Name })
	sort.SliceStable(app.Instances, func(i, j int) bool {
		a, b := app.Instances[i], app.Instances[j]
		if a.Process != b.Process {
			return a.Process < b.Process
		}
		return a.Index < b.Index
	})
	c.render(w, http.StatusOK, "app", d)
}

type rollbackData struct {
	page
	App     string
	Release *api.Release
}

// rollbackConfirm asks before rolling back to a release.
func (c *Console) rollbackConfirm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	v, err := strconv.Atoi(r.URL.Query().Get("version"))
	if err != nil || v <= 0 {
		c.fail(w, r, api.Errorf(api.EInvalid, "choose a release to roll back to from the releases list"))
		return
	}
	rels, err := c.svc.Lifecycle.Releases(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, rel := range rels {
		if rel.Version == v {
			c.render(w, http.StatusOK, "rollback", rollbackData{page: c.basePage(w, r, "Roll back "+name), App: name, Release: rel})
			return
		}
	}
	c.fail(w, r, api.Errorf(api.ENotFound, "app %s has no release v%d — choose one from the releases list", name, v))
}

// actionFunc does one form action and returns the message to show.
type actionFunc func(ctx context.Context, app string, r *http.Request) (string, error)

// action runs fn and answers with a redirect to the app's page (POST,
// redirect, GET), carrying the outcome as a flash message.
func (c *Console) action(fn actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("app")
		msg, err := fn(r.Context(), name, r)
		if api.ErrorCode(err) == api.EUnauthorized {
			c.fail(w, r, err)
			return
		}
		if err != nil {
			c.setFlash(w, r, false, api.ErrorMessage(err))
		} else {
			c.setFlash(w, r, true, msg)
		}
		t := api.TargetFrom(r.Context())
		http.Redirect(w, r, spaceBase(t.Org, t.Space)+"/apps/"+url.PathEscape(name), http.StatusSeeOther)
	}
}

func formInt(r *http.Request, field, what string) (*int, error) {
	v := strings.TrimSpace(r.PostFormValue(field))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return nil, api.Errorf(api.EInvalid, "%s %q is not a number of 0 or more — type a whole number", what, v)
	}
	return &n, nil
}

func (c *Console) scale(ctx context.Context, app string, r *http.Request) (string, error) {
	req := api.ScaleRequest{Process: r.PostFormValue("process")}
	var err error
	if req.Instances, err = formInt(r, "instances", "instances"); err != nil {
		return "", err
	}
	if req.MemoryMB, err = formInt(r, "memory_mb", "memory"); err != nil {
		return "", err
	}
	if req.Instances == nil && req.MemoryMB == nil {
		return "", api.Errorf(api.EInvalid, "nothing to change — type a number of instances or an amount of memory")
	}
	res, err := c.svc.Lifecycle.Scale(ctx, app, req)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("scaled %s to %d instances of %d MB", res.Process.Type, res.Process.Instances, res.Process.MemoryMB), nil
}

func (c *Console) restart(ctx context.Context, app string, _ *http.Request) (string, error) {
	rel, err := c.svc.Lifecycle.Restart(ctx, app)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restarting %s as release v%d", app, rel.Version), nil
}

func (c *Console) setState(state api.AppState) actionFunc {
	return func(ctx context.Context, app string, _ *http.Request) (string, error) {
		if _, err := c.svc.Lifecycle.SetState(ctx, app, state); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is %s", app, state), nil
	}
}

func (c *Console) rollback(ctx context.Context, app string, r *http.Request) (string, error) {
	v, err := strconv.Atoi(r.PostFormValue("version"))
	if err != nil || v <= 0 {
		return "", api.Errorf(api.EInvalid, "choose a release to roll back to from the releases list")
	}
	rel, err := c.svc.Lifecycle.Rollback(ctx, app, v)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("rolled back to v%d as release v%d", v, rel.Version), nil
}

func (c *Console) changeEnv(ctx context.Context, app string, r *http.Request) (string, error) {
	var ch api.EnvChange
	if name := strings.TrimSpace(r.PostFormValue("unset")); name != "" {
		ch.Unset = []string{name}
	} else {
		name := strings.TrimSpace(r.PostFormValue("name"))
		ch.Set = map[string]string{name: r.PostFormValue("value")}
	}
	rel, err := c.svc.Lifecycle.ChangeEnv(ctx, app, ch)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: release v%d", rel.Description, rel.Version), nil
}

type logsData struct {
	page
	App    string
	Source string
	Lines  []api.LogEnvelope
	Stream string
}

// logSources are the choices of the logs page's filter.
var logSources = map[string]bool{"": true, "app": true, api.LogSourceStaging: true, api.LogSourceRouter: true, api.LogSourceStrata: true}

func (c *Console) logQuery(r *http.Request) (api.LogQuery, error) {
	q := api.LogQuery{App: r.PathValue("app"), Source: r.URL.Query().Get("source")}
	if !logSources[q.Source] {
		return q, api.Errorf(api.EInvalid, "source %q is not one of app, staging, router, strata", q.Source)
	}
	return q, nil
}

// logsPage shows recent lines; console.js then follows the stream.
func (c *Console) logsPage(w http.ResponseWriter, r *http.Request) {
	q, err := c.logQuery(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := logsData{page: c.basePage(w, r, "Logs of "+q.App), App: q.App, Source: q.Source}
	err = c.svc.Logs.Logs(r.Context(), q, func(e api.LogEnvelope) error {
		d.Lines = append(d.Lines, e)
		return nil
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Stream = d.Base + "/apps/" + url.PathEscape(q.App) + "/logs/stream"
	if q.Source != "" {
		d.Stream += "?source=" + url.QueryEscape(q.Source)
	}
	c.render(w, http.StatusOK, "logs", d)
}

// logStream serves recent and then live log lines as Server-Sent Events
// (one JSON api.LogEnvelope per event) until the browser goes away.
func (c *Console) logStream(w http.ResponseWriter, r *http.Request) {
	q, err := c.logQuery(r)
	if err != nil {
		http.Error(w, api.ErrorMessage(err), statusOf(err))
		return
	}
	q.Follow = true
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lines := make(chan api.LogEnvelope, 64)
	done := make(chan error, 1)
	go func() {
		done <- c.svc.Logs.Logs(ctx, q, func(e api.LogEnvelope) error {
			select {
			case lines <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	tick := time.NewTicker(c.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case e := <-lines:
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			_ = rc.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case err := <-done:
			for drained := false; !drained; { // lines sent before Logs returned
				select {
				case e := <-lines:
					b, _ := json.Marshal(e)
					fmt.Fprintf(w, "data: %s\n\n", b)
				default:
					drained = true
				}
			}
			if err != nil && ctx.Err() == nil {
				b, _ := json.Marshal(map[string]string{"error": api.ErrorMessage(err)})
				fmt.Fprintf(w, "event: failure\ndata: %s\n\n", b)
			}
			_ = rc.Flush()
			return
		case <-r.Context().Done():
			return
		}
	}
}
