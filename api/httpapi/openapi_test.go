package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// openAPIMethods are the operations an OpenAPI path item can hold.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIParam is a parameter of an operation, inline or a $ref to
// #/components/parameters.
type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOperation struct {
	Parameters []openAPIParam `json:"parameters"`
}

// openAPIDocument is the part of openapi.json these tests read.
type openAPIDocument struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam `json:"parameters"`
	} `json:"components"`
}

// operations returns the document's operations by "METHOD path".
func (d openAPIDocument) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	ops := map[string]openAPIOperation{}
	for path, item := range d.Paths {
		for method, raw := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue // parameters, summary, …
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("openapi.json: %s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

// takes reports whether op declares the header parameter name.
func (d openAPIDocument) takes(op openAPIOperation, name string) bool {
	for _, p := range op.Parameters {
		if ref, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			p = d.Components.Parameters[ref]
		}
		if p.In == "header" && strings.EqualFold(p.Name, name) {
			return true
		}
	}
	return false
}

// newOpenAPIServer returns a Server over the real services of an Env, the
// document it serves at GET /v1/openapi.json, and the Env.
func newOpenAPIServer(t *testing.T) (*httpapi.Server, openAPIDocument, *httpapitest.Env) {
	t.Helper()
	env := httpapitest.Start(t, httpapitest.Options{})
	srv := httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, env.Services)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	var doc openAPIDocument
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /v1/openapi.json: %d, not a JSON document: %v", rec.Code, err)
	}
	return srv, doc, env
}

// echoParam is a path parameter as echo writes it (:name).
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPIListsEveryRoute keeps openapi.json the one list of endpoints:
// every route the router serves is described in it, and every operation it
// describes is served. A wildcard route (/git/*) is a mounted handler: the
// document must describe at least one operation under its prefix, and those
// operations count as served by it.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	srv, doc, _ := newOpenAPIServer(t)
	served := map[string]bool{}            // "GET /v1/apps/{name}"
	mounts := map[string]map[string]bool{} // "/git/" → methods
	for _, r := range httpapi.Routes(srv) {
		if r.Method == echo.RouteNotFound {
			continue // the catch-alls echo adds for groups with middleware
		}
		if prefix, ok := strings.CutSuffix(r.Path, "*"); ok {
			if mounts[prefix] == nil {
				mounts[prefix] = map[string]bool{}
			}
			mounts[prefix][r.Method] = true
			continue
		}
		served[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(served) == 0 {
		t.Fatal("the router serves no routes")
	}

	documented := doc.operations(t)
	covered := map[string]bool{} // mount prefixes with a documented operation
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		for prefix, methods := range mounts {
			if strings.HasPrefix(path, prefix) && methods[method] {
				covered[prefix] = true
				served[op] = true
			}
		}
	}
	for _, op := range slices.Sorted(maps.Keys(served)) {
		if _, ok := documented[op]; !ok {
			t.Errorf("%s is served but openapi.json does not describe it", op)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(documented)) {
		if !served[op] {
			t.Errorf("openapi.json describes %s but no route serves it", op)
		}
	}
	for _, prefix := range slices.Sorted(maps.Keys(mounts)) {
		if !covered[prefix] {
			t.Errorf("%s* is mounted but openapi.json describes nothing under %s", prefix, prefix)
		}
	}
}

// pathValues fill the path parameters of described operations.
var pathValues = strings.NewReplacer(
	"{name}", "hello", "{space}", "default", "{org}", "default", "{user}", "alice", "{buildpack}", "shout", "{domain}", "apps.example.com", "{id}", "n1", "{ref}", "sha256:"+strings.Repeat("a", 64))

// TestOpenAPIListsIdempotentOperations: an operation of openapi.json takes an
// Idempotency-Key header exactly when the server honours one, seen from
// outside as the refusal of a key that is too long.
func TestOpenAPIListsIdempotentOperations(t *testing.T) {
	srv, doc, env := newOpenAPIServer(t)
	tooLong := strings.Repeat("k", httpapi.MaxIdempotencyKey+1)
	ops := doc.operations(t)
	// The real services run the requests: POST /v1/logout revokes the
	// caller's token, so the caller is an admin who logs in again then.
	env.NewUser("ops", true)
	token := env.Login("ops")
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		method, path, _ := strings.Cut(op, " ")
		if strings.HasPrefix(path, "/git/") {
			continue // git's smart-HTTP protocol, served by its own handler
		}
		if _, err := env.Controller.Tenancy.Authenticate(context.Background(), token); err != nil {
			token = env.Login("ops")
		}
		t.Run(op, func(t *testing.T) {
			req := httptest.NewRequest(method, pathValues.Replace(path), strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", tooLong)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			honoured := rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "Idempotency-Key is longer than")
			documented := doc.takes(ops[op], "Idempotency-Key")
			if honoured != documented {
				says, does := map[bool]string{true: "takes", false: "does not take"}, map[bool]string{true: "honours", false: "ignores"}
				t.Errorf("openapi.json %s an Idempotency-Key header but the server %s one (%d %s)", says[documented], does[honoured], rec.Code, strings.TrimSpace(rec.Body.String()))
			}
		})
	}
}
