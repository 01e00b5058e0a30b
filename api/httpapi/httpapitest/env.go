// Package httpapitest runs the real REST API for tests of httpapi itself,
// its client and the CLI: the controller's services on a real SQLite store
// and blob store, an embedded NATS server, and the httpapi handler on an
// httptest server, wired as cmd/stratad wires them.
//
// Two components outside the controller are played by small stand-ins that
// speak their real bus protocol (docs/architecture.md): a Builder that
// consumes build jobs and reports results without compiling, and a Node that
// heartbeats, reports the instances it is told to start as running, and runs
// tasks with sh on this machine.
package httpapitest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/controller"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/secretbox"
	"github.com/strata-paas/strata/api/store"
)

// UserName is the non-admin user of an Env, a space developer of the default
// space.
const UserName = "dev"

// Version is the version the API of an Env reports.
const Version = "v-test"

// UserPassword is UserName's password.
const UserPassword = "correct horse battery staple"

// Options adjust an Env.
type Options struct {
	// Logger receives the services' logs (nil: discarded).
	Logger *slog.Logger
	// CertificatesBus gets the certificate service's change notifications
	// (nil: the bus).
	CertificatesBus controller.Publisher
}

// Env is a running API.
type Env struct {
	URL        string
	AdminToken string
	UserToken  string // UserName's
	Store      *store.Store
	Blobs      api.BlobStore
	Controller *controller.Controller
	Builder    *Builder
	Node       *Node
	Handler    *httpapi.Server
	// Config and Services are what Handler was built from: a test builds
	// another handler on the same services with httpapi.New(e.Config,
	// e.Services), e.g. a second controller's API on the same store.
	Config   httpapi.Config
	Services httpapi.Services
	conn     *bus.Conn
	connect  func(name string) *bus.Conn
	t        testing.TB
}

// Start runs an Env until the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func(name string) *bus.Conn {
		conn, err := bus.Connect(context.Background(), "", bus.Options{Name: name, Server: srv, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		return conn
	}
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "strata.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	blobs, err := blobstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Store: st, Blobs: blobs, conn: connect("controller"), t: t}
	ctrl, err := controller.New(controller.Config{
		Domain: "localhost", RouterPort: "8080",
		ConvergeInterval: 50 * time.Millisecond, NodeTTL: 2 * time.Second,
		DeployWaitTimeout: 10 * time.Second, CommandTimeout: 2 * time.Second,
		LogDir: t.TempDir(), Logger: log,
	}, st, blobs, e.conn)
	if err != nil {
		t.Fatal(err)
	}
	e.Controller = ctrl
	if e.AdminToken, _, err = ctrl.Tenancy.Bootstrap(context.Background(), "admin"); err != nil {
		t.Fatal(err)
	}
	e.UserToken = e.newDeveloper(UserName)

	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	var certBus controller.Publisher = e.conn
	if opts.CertificatesBus != nil {
		certBus = opts.CertificatesBus
	}
	certs := controller.NewCertificates(controller.CertificatesConfig{Store: st, Box: box, Bus: certBus, Events: st, Logger: log})

	// The same services as cmd/stratad/controller.go; git push has its own
	// end-to-end tests.
	e.Config = httpapi.Config{
		Info:        api.Info{Version: Version, Domain: "localhost", RouterPort: "8080"},
		Logger:      log,
		Idempotency: st,
	}
	e.Services = httpapi.Services{
		Auth: ctrl.Tenancy, Users: ctrl.Users, Orgs: ctrl.Orgs, Quotas: ctrl.Quotas, Buildpacks: ctrl.Buildpacks, Domains: ctrl.Domains, Apps: ctrl.Apps, Deploy: ctrl.Deploys, Logs: ctrl.Logs, Lifecycle: ctrl.Apps,
		Operate: ctrl.Operate(), Placement: ctrl.Placement, Routes: ctrl.Routes,
		Certificates: certs, Blobs: blobs, Nodes: httpapi.NodeListFunc(ctrl.Nodes.List),
		Git: httpapi.Unsupported{What: "git push", Hint: "use strata push"},
	}
	e.Handler = httpapi.New(e.Config, e.Services)
	hs := httptest.NewServer(e.Handler.Handler())
	t.Cleanup(hs.Close)
	e.URL = hs.URL

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ctrl.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ctrl.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("controller not ready after 10s")
	}
	e.Builder = startBuilder(t, connect("builder"))
	e.connect = connect
	e.Node = e.StartNode(NodeID)
	return e
}

// StartNode starts another Node with this ID and waits until the controller
// knows it.
func (e *Env) StartNode(id string) *Node {
	e.t.Helper()
	x := startNode(e.t, e.connect("node "+id), id)
	e.Eventually("node "+id+" known", func() bool {
		return slices.ContainsFunc(e.Controller.Nodes.List(), func(n api.Node) bool { return n.ID == id })
	})
	return x
}

// newDeveloper creates a user with the space-developer role in the default
// space and returns its token.
func (e *Env) newDeveloper(name string) string {
	e.NewUser(name, false)
	if err := e.Controller.Orgs.SetRole(e.AdminContext(), api.RoleRequest{User: name, Role: api.RoleSpaceDeveloper, Org: controller.DefaultOrg, Space: controller.DefaultSpace}); err != nil {
		e.t.Fatal(err)
	}
	return e.Login(name)
}

// NewUser creates a user (an admin if admin) whose password is
// UserPassword.
func (e *Env) NewUser(name string, admin bool) {
	e.t.Helper()
	if _, err := e.Controller.Users.CreateUser(e.AdminContext(), api.UserRequest{Name: name, Admin: admin, Password: UserPassword}); err != nil {
		e.t.Fatal(err)
	}
}

// Login logs a user whose password is UserPassword in and returns a new
// token.
func (e *Env) Login(name string) string {
	e.t.Helper()
	res, err := e.Controller.Users.Login(context.Background(), api.LoginRequest{Username: name, Password: UserPassword}, "127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Token
}

// AdminContext is a context of the admin, for calling services directly.
func (e *Env) AdminContext() context.Context {
	p, err := e.Controller.Tenancy.Authenticate(context.Background(), e.AdminToken)
	if err != nil {
		e.t.Fatal(err)
	}
	return api.WithPrincipal(context.Background(), p)
}

// App returns an app's detail as the admin sees it.
func (e *Env) App(name string) *api.AppDetail {
	e.t.Helper()
	d, err := e.Controller.Apps.AppDetail(e.AdminContext(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// Log publishes a log line of an app on the bus, as an executor or router
// does, and waits until the controller holds it (a line of the same source,
// text and time).
func (e *Env) Log(app, source, line string, at time.Time) {
	e.t.Helper()
	d := e.App(app)
	if err := e.conn.Publish(api.SubjectLogs(d.ID), api.LogEnvelope{Time: at, AppID: d.ID, App: app, Source: source, Line: line}); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.conn.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.Eventually("log line "+line+" held", func() bool {
		held := false
		err := e.Controller.Logs.Logs(e.AdminContext(), api.LogQuery{App: app, Source: source}, func(l api.LogEnvelope) error {
			held = held || l.Source == source && l.Line == line && l.Time.Equal(at)
			return nil
		})
		return err == nil && held
	})
}

// Eventually polls cond every 20 ms until it holds, failing the test after
// 10 s.
func (e *Env) Eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Source returns the source uploaded for a build job.
func (e *Env) Source(job api.BuildJob) []byte {
	e.t.Helper()
	r, err := e.Blobs.Get(context.Background(), job.SourceBlob)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}
