package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
)

// The authorization matrix: every operation of the served OpenAPI document
// (so an endpoint added later cannot be forgotten: one without an
// expectation here fails), the git endpoint included, called as every role
// on a resource of the role's own space (acme/dev) and of a foreign org
// (globex/dev), against the real controller, API and git handler as
// stratad wires them. A call is "allowed" when authorization let it through
// (whatever the operation then answered), "hidden" when it answered 404 for
// the space or org itself, "forbidden" on 403.

type verdict string

const (
	allowed   verdict = "allowed"
	hidden    verdict = "hidden"
	forbidden verdict = "forbidden"
)

// roles in the matrix, each a user (admin is the bootstrap admin).
var matrixRoles = []string{"admin", "org-manager", "org-auditor", "space-manager", "space-developer", "space-auditor", "stranger"}

// matrixComponents are the credentials of Strata's own parts, called like
// the roles: each may do only its one thing.
var matrixComponents = []string{api.ComponentExecutor, api.ComponentRouter, api.ComponentBuilder}

// componentOps are what each component may call besides its self and
// anyone operations.
var componentOps = map[string][]string{
	"GET /v1/blobs/{ref}":         {api.ComponentExecutor, api.ComponentBuilder},
	"POST /v1/blobs":              {api.ComponentBuilder},
	"GET /v1/router/certificates": {api.ComponentRouter},
}

// class is what an operation needs.
type class int

const (
	public      class = iota // no token needed
	self                     // any logged-in user, about themself
	anyone                   // any logged-in user; answers are filtered
	adminOnly                // admins
	appRead                  // read apps of the target space
	appDevelop               // change apps of the target space
	orgRead                  // see the org (any role in it)
	orgManage                // create/delete spaces: org managers
	memberAdmin              // change space roles: space or org managers
)

var opClass = map[string]class{
	"GET /v1/info": public, "GET /v1/openapi.json": public, "POST /v1/login": public,
	"GET /v1/whoami": self, "POST /v1/logout": self, "PUT /v1/password": self, "GET /v1/tokens": self, "DELETE /v1/tokens/{id}": self,
	"GET /v1/orgs": anyone,

	"POST /v1/blobs": adminOnly, "GET /v1/blobs/{ref}": adminOnly, "GET /v1/nodes": adminOnly,
	"POST /v1/nodes/{id}/drain": adminOnly, "POST /v1/nodes/{id}/undrain": adminOnly,
	"PUT /v1/spaces/{space}/placement": adminOnly, "PUT /v1/org/placement": adminOnly,
	"GET /v1/certificates": adminOnly, "POST /v1/certificates": adminOnly, "DELETE /v1/certificates/{name}": adminOnly,
	"GET /v1/router/certificates": adminOnly,
	"GET /v1/users":               adminOnly, "POST /v1/users": adminOnly, "DELETE /v1/users/{user}": adminOnly, "GET /v1/events": adminOnly,
	"POST /v1/orgs": adminOnly, "DELETE /v1/orgs/{org}": adminOnly,

	"GET /v1/apps": appRead, "GET /v1/apps/{name}": appRead, "GET /v1/apps/{name}/logs": appRead,
	"GET /v1/apps/{name}/releases": appRead, "GET /v1/apps/{name}/events": appRead, "GET /v1/routes": appRead,
	"GET /v1/apps/{name}/placement": appRead,

	"POST /v1/apps": appDevelop, "DELETE /v1/apps/{name}": appDevelop, "POST /v1/apps/{name}/purge-cache": appDevelop, "POST /v1/apps/{name}/push": appDevelop,
	"POST /v1/apps/{name}/rollback": appDevelop, "GET /v1/apps/{name}/env": appDevelop, "PATCH /v1/apps/{name}/env": appDevelop,
	"POST /v1/apps/{name}/scale": appDevelop, "POST /v1/apps/{name}/start": appDevelop, "POST /v1/apps/{name}/stop": appDevelop,
	"POST /v1/apps/{name}/restart": appDevelop, "PUT /v1/apps/{name}/placement": appDevelop,
	"PUT /v1/apps/{name}/health-check": appDevelop, "POST /v1/apps/{name}/tasks": appDevelop,
	"POST /v1/apps/{name}/routes": appDevelop, "DELETE /v1/apps/{name}/routes": appDevelop,
	"GET /git/{app}.git/info/refs": appDevelop, "POST /git/{app}.git/git-receive-pack": appDevelop,

	"GET /v1/spaces": orgRead, "GET /v1/orgs/{org}/spaces": orgRead, "GET /v1/orgs/{org}/members": orgRead,
	"POST /v1/orgs/{org}/spaces": orgManage, "DELETE /v1/orgs/{org}/spaces/{space}": orgManage,
	"PUT /v1/orgs/{org}/roles": memberAdmin, "DELETE /v1/orgs/{org}/roles": memberAdmin,
	"GET /v1/domains": anyone, "POST /v1/domains": adminOnly, "DELETE /v1/domains/{domain}": adminOnly,
	"GET /v1/buildpacks": anyone, "POST /v1/buildpacks": adminOnly, "PUT /v1/buildpacks/{buildpack}": adminOnly, "DELETE /v1/buildpacks/{buildpack}": adminOnly,
	"GET /v1/orgs/{org}/quotas": orgRead, "GET /v1/orgs/{org}/events": orgRead, "PUT /v1/orgs/{org}/quota": adminOnly, "PUT /v1/orgs/{org}/spaces/{space}/quota": adminOnly,
}

// expect is the verdict for a role calling an operation of class c on its
// own space (own) or on the foreign org.
func expect(c class, role string, own bool) verdict {
	switch c {
	case public, self, anyone:
		return allowed
	case adminOnly:
		if role == "admin" {
			return allowed
		}
		return forbidden
	}
	if role == "admin" {
		return allowed
	}
	if !own {
		return hidden
	}
	in := func(roles ...string) bool { return slices.Contains(roles, role) }
	switch c {
	case appRead:
		if in("org-manager", "space-manager", "space-developer", "space-auditor") {
			return allowed
		}
		return hidden
	case appDevelop:
		switch {
		case in("space-developer"):
			return allowed
		case in("org-manager", "space-manager", "space-auditor"):
			return forbidden
		}
		return hidden
	case orgRead:
		if role == "stranger" {
			return hidden
		}
		return allowed
	case orgManage:
		switch {
		case in("org-manager"):
			return allowed
		case role == "stranger":
			return hidden
		}
		return forbidden
	case memberAdmin:
		switch {
		case in("org-manager", "space-manager"):
			return allowed
		case role == "stranger":
			return hidden
		}
		return forbidden
	}
	panic("unknown class")
}

// expectComponent is the verdict for a component's credential: its own
// operation, the self and anyone ones are allowed; other admin operations
// are forbidden; every tenant resource is hidden.
func expectComponent(c class, comp, op string) verdict {
	switch {
	case slices.Contains(componentOps[op], comp), c == public, c == self, c == anyone:
		return allowed
	case c == adminOnly:
		return forbidden
	}
	return hidden
}

type matrixEnv struct {
	t        *testing.T
	api      string
	tokens   map[string]string // role → token
	password map[string]string // role → password ("" for admin)
	admin    *client.Client
	seq      atomic.Int64
}

func (e *matrixEnv) next(prefix string) string { return fmt.Sprintf("%s-%d", prefix, e.seq.Add(1)) }

func startMatrix(t *testing.T) *matrixEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	srv, err := bus.StartServer(bus.ServerConfig{Port: -1, StoreDir: filepath.Join(dir, "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := bus.Connect(ctx, "", bus.Options{Name: "controller", Server: srv, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	role, err := startController(ctx, controllerConfig{DataDir: dir, APIAddr: "127.0.0.1:0", Domain: "localhost", RouterPort: "8080", Logger: log}, conn)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = role.run(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done; conn.Close(); srv.Shutdown() })

	e := &matrixEnv{t: t, api: role.apiURL, tokens: map[string]string{"admin": role.adminToken}, password: map[string]string{"admin": ""}}
	e.admin = client.New(e.api, role.adminToken)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, org := range []string{"acme", "globex"} {
		_, err := e.admin.CreateOrg(ctx, org)
		must("create org", err)
		_, err = e.admin.CreateSpace(ctx, org, "dev")
		must("create space", err)
	}
	_, err = e.admin.WithTarget(api.Target{Org: "acme", Space: "dev"}).CreateApp(ctx, "hello")
	must("create acme app", err)
	_, err = e.admin.WithTarget(api.Target{Org: "globex", Space: "dev"}).CreateApp(ctx, "other")
	must("create globex app", err)
	for _, comp := range matrixComponents {
		e.tokens[comp] = role.componentTokens[comp]
	}
	for _, r := range append(matrixRoles[1:], "extra") {
		pw := "password-of-" + r
		_, err := e.admin.CreateUser(ctx, api.UserRequest{Name: r, Password: pw})
		must("create user", err)
		e.password[r] = pw
		req := api.RoleRequest{User: r, Role: api.Role(r), Org: "acme"}
		if strings.HasPrefix(r, "space-") {
			req.Space = "dev"
		}
		if r != "stranger" && r != "extra" {
			must("set role", e.admin.SetRole(ctx, req))
		}
		res, err := client.New(e.api, "").Login(ctx, api.LoginRequest{Username: r, Password: pw})
		must("login", err)
		e.tokens[r] = res.Token
	}
	return e
}

// call sends op as role on the own or foreign space and returns the status
// and error message.
func (e *matrixEnv) call(op, role string, own bool) (int, string) {
	e.t.Helper()
	method, path, _ := strings.Cut(op, " ")
	org, app, domain := "acme", "hello", "none-such.example.com"
	if !own {
		org, app = "globex", "other"
	}
	token := e.tokens[role]
	timeout := 10 * time.Second
	if op == "POST /v1/apps/{name}/push" {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	query, body, ctype := "", "", "application/json"

	switch op {
	case "DELETE /v1/apps/{name}":
		// A fresh app to delete, made by the admin in the same space.
		app = e.next("gone")
		if _, err := e.admin.WithTarget(api.Target{Org: org, Space: "dev"}).CreateApp(ctx, app); err != nil {
			e.t.Fatal(err)
		}
	case "DELETE /v1/domains/{domain}":
		domain = e.next("gone") + ".example.com"
		if _, err := e.admin.CreateDomain(ctx, api.DomainInfo{Name: domain}); err != nil {
			e.t.Fatal(err)
		}
	case "DELETE /v1/users/{user}":
		if _, err := e.admin.CreateUser(ctx, api.UserRequest{Name: e.next("victim"), Password: "victim-password"}); err != nil {
			e.t.Fatal(err)
		}
	case "POST /v1/logout":
		// Log out a second token, keeping the role's own.
		res, err := client.New(e.api, "").Login(ctx, api.LoginRequest{Username: role, Password: e.password[role]})
		if role == "admin" {
			token = e.tokens["admin"] // has no password; revoking its bootstrap token would end the test
			method, path = http.MethodGet, "/v1/whoami"
		} else if err != nil {
			e.t.Fatal(err)
		} else {
			token = res.Token
		}
	}
	victim := fmt.Sprintf("victim-%d", e.seq.Load())
	path = strings.NewReplacer("{name}", app, "{org}", org, "{space}", "dev", "{user}", victim,
		"{id}", "0123456789abcdef", "{buildpack}", "none-such", "{domain}", domain, "{ref}", "sha256:"+strings.Repeat("a", 64), "{app}", org+"/dev/"+app).Replace(path)

	switch op {
	case "POST /v1/apps":
		body = fmt.Sprintf(`{"name":%q}`, e.next("new"))
	case "POST /v1/apps/{name}/push":
		ctype, body = "application/gzip", "not a tarball"
	case "POST /v1/apps/{name}/rollback":
		body = `{"version":0}`
	case "PATCH /v1/apps/{name}/env":
		body = `{"set":{"A":"1"}}`
	case "POST /v1/apps/{name}/scale":
		body = `{"process":"web","instances":1}`
	case "PUT /v1/apps/{name}/placement", "PUT /v1/spaces/{space}/placement", "PUT /v1/org/placement",
		"PUT /v1/orgs/{org}/quota", "PUT /v1/orgs/{org}/spaces/{space}/quota":
		body = `{}`
	case "PUT /v1/apps/{name}/health-check":
		body = `{"process":"web","type":"port"}`
	case "POST /v1/apps/{name}/tasks":
		body = `{"command":"echo hi"}`
	case "POST /v1/apps/{name}/routes":
		body = fmt.Sprintf(`{"host":"%s.localhost"}`, e.next("r"))
	case "DELETE /v1/apps/{name}/routes":
		query = "?host=nothing-mapped.localhost"
	case "POST /v1/orgs":
		body = fmt.Sprintf(`{"name":%q}`, e.next("org"))
	case "POST /v1/orgs/{org}/spaces":
		body = fmt.Sprintf(`{"name":%q}`, e.next("sp"))
	case "PUT /v1/orgs/{org}/roles":
		body = `{"user":"extra","role":"space-auditor","space":"dev"}`
	case "DELETE /v1/orgs/{org}/roles":
		query = "?user=extra&role=space-auditor&space=dev"
	case "POST /v1/users":
		body = fmt.Sprintf(`{"name":%q,"password":"a long password"}`, e.next("user"))
	case "PUT /v1/password":
		pw, next := e.password[role], e.password[role]
		if role == "admin" {
			next = "admin-password-1" // the bootstrap admin has none yet
			e.password["admin"] = next
		}
		body = fmt.Sprintf(`{"old":%q,"new":%q}`, pw, next)
	case "POST /v1/login":
		body = fmt.Sprintf(`{"username":%q,"password":%q}`, role, e.password[role])
	case "POST /v1/domains":
		body = fmt.Sprintf(`{"name":"%s.example.com"}`, e.next("shared"))
	case "POST /v1/buildpacks":
		query = "?name=" + e.next("bp")
	case "POST /v1/blobs":
		ctype, body = "application/octet-stream", "blob"
	case "POST /v1/certificates":
		body = `{"certificate":"x","private_key":"y"}`
	case "DELETE /v1/orgs/{org}", "DELETE /v1/orgs/{org}/spaces/{space}":
		// Not recursive: an org with spaces and a space with apps stay.
	case "GET /git/{app}.git/info/refs":
		query = "?service=git-receive-pack"
	case "POST /git/{app}.git/git-receive-pack":
		ctype, body = "application/x-git-receive-pack-request", "0000"
	}
	req, err := http.NewRequestWithContext(ctx, method, e.api+path+query, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if strings.HasPrefix(path, "/git/") {
		req.SetBasicAuth("x", token)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(api.HeaderOrg, org)
		req.Header.Set(api.HeaderSpace, "dev")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil && ctx.Err() != nil && op == "POST /v1/apps/{name}/push" {
		// Denials answer at once; an allowed push waits for a builder
		// this test does not run.
		return http.StatusAccepted, "waiting for a builder"
	}
	if err != nil {
		e.t.Fatalf("%s as %s: %v", op, role, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var eb struct {
		Error *api.Error `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
		msg = eb.Error.Message
	}
	return res.StatusCode, msg
}

// verdictOf reads a call's answer: 403 forbidden; 404 naming the space or
// org itself hidden; anything else (including 404 for a missing app or
// user) allowed. 401 means the test's token is wrong.
func verdictOf(status int, msg, org string) (verdict, bool) {
	switch {
	case status == http.StatusUnauthorized:
		return "", false
	case status == http.StatusForbidden:
		return forbidden, true
	case status == http.StatusNotFound && (strings.Contains(msg, "space "+org+"/dev not found") || strings.Contains(msg, fmt.Sprintf("org %q not found", org))):
		return hidden, true
	}
	return allowed, true
}

func TestAuthorizationMatrix(t *testing.T) {
	e := startMatrix(t)
	res, err := http.Get(e.api + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains([]string{"get", "put", "post", "delete", "patch"}, method) {
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	if len(ops) < 50 {
		t.Fatalf("the served document lists %d operations", len(ops))
	}
	for _, op := range ops {
		c, ok := opClass[op]
		if !ok {
			t.Errorf("%s: no authorization expectation — add it to opClass", op)
			continue
		}
		if c == public {
			continue
		}
		for _, role := range append(append([]string{}, matrixRoles...), matrixComponents...) {
			if slices.Contains(matrixComponents, role) && (op == "POST /v1/logout" || op == "PUT /v1/password") {
				continue // a component has no password and logs in with no other token
			}
			for _, own := range []bool{true, false} {
				org := "acme"
				if !own {
					org = "globex"
				}
				status, msg := e.call(op, role, own)
				got, ok := verdictOf(status, msg, org)
				if !ok {
					t.Errorf("%s as %s on %s: 401 %s — the test's token is wrong", op, role, org, msg)
					continue
				}
				want := expect(c, role, own)
				if slices.Contains(matrixComponents, role) {
					want = expectComponent(c, role, op)
				}
				if got != want {
					t.Errorf("%s as %s on %s: %s (%d %s), want %s", op, role, org, got, status, msg, want)
				}
			}
		}
	}
}
