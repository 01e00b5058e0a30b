package httpapi_test

import (
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// TestNewRefusesNilService: every field of Services is required, and the
// error names the missing one.
func TestNewRefusesNilService(t *testing.T) {
	full := httpapitest.Start(t, httpapitest.Options{}).Services
	if err := full.Validate(); err != nil {
		t.Fatalf("Validate of the Env's services: %v", err)
	}
	typ := reflect.TypeOf(full)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		t.Run(name, func(t *testing.T) {
			svc := full
			reflect.ValueOf(&svc).Elem().Field(i).SetZero()
			want := "Services." + name + " is nil"
			if err := svc.Validate(); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Validate without %s = %v, want an error containing %q", name, err, want)
			}
			defer func() {
				r := recover()
				if err, ok := r.(error); !ok || !strings.Contains(err.Error(), want) {
					t.Fatalf("New without %s panicked with %v, want an error containing %q", name, r, want)
				}
			}()
			httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, svc)
		})
	}
}

// TestUnsupportedAnswersEveryEndpoint: with nothing but Auth, every endpoint
// that uses a service answers not_supported with the Unsupported's message,
// and none of them fails another way.
func TestUnsupportedAnswersEveryEndpoint(t *testing.T) {
	var svc httpapi.Services
	v := reflect.ValueOf(&svc).Elem()
	for i := range v.NumField() {
		u := httpapi.Unsupported{What: "capability " + v.Type().Field(i).Name, Hint: "try later"}
		v.Field(i).Set(reflect.ValueOf(u))
	}
	_, doc, env := newOpenAPIServer(t)
	svc.Auth = env.Services.Auth
	srv := httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, svc)
	noService := map[string]bool{"GET /v1/info": true, "GET /v1/openapi.json": true, "GET /v1/whoami": true}
	ops := doc.operations(t)
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		if noService[op] {
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		t.Run(op, func(t *testing.T) {
			// What handlers check before calling a service: POST /v1/apps the
			// name in the body, DELETE …/routes the host in the query.
			req := httptest.NewRequest(method, pathValues.Replace(path)+"?host=blog.localhost", strings.NewReader(`{"name":"hello"}`))
			req.Header.Set("Authorization", "Bearer "+env.AdminToken)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusNotImplemented {
				t.Fatalf("status %d (%s), want 501", rec.Code, strings.TrimSpace(rec.Body.String()))
			}
			e := errorOf(t, rec.Result())
			if e.Code != api.EUnsupported || !strings.HasPrefix(e.Message, "capability ") || !strings.HasSuffix(e.Message, " is not supported yet — try later") {
				t.Fatalf("error %+v, want %s with \"capability … is not supported yet — try later\"", e, api.EUnsupported)
			}
		})
	}
	want := "listing nodes is not supported yet"
	if err := (httpapi.Unsupported{What: "listing nodes"}).Err(); api.ErrorCode(err) != api.EUnsupported || api.ErrorMessage(err) != want {
		t.Fatalf("Err without a hint = %v, want %s %q", err, api.EUnsupported, want)
	}
}
