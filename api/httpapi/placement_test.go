package httpapi_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

var _ api.PlacementService = (*placementFake)(nil)

// placementFake is an api.PlacementService for the shared fake's API.
type placementFake struct {
	mu      sync.Mutex
	app     map[string]api.PlacementPolicy
	space   api.PlacementPolicy
	drained map[string]bool
}

func (f *placementFake) Spaces(context.Context) ([]*api.SpaceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []*api.SpaceInfo{{Space: api.Space{Name: "default"}, Org: "default", Placement: f.space}}, nil
}

func (f *placementFake) SetSpacePlacement(_ context.Context, space string, p api.PlacementPolicy) (*api.SpaceInfo, error) {
	if space != "default" {
		return nil, api.Errorf(api.ENotFound, "space %q not found", space)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.space = p
	return &api.SpaceInfo{Space: api.Space{Name: space}, Placement: p}, nil
}

func (f *placementFake) SetOrgPlacement(context.Context, api.PlacementPolicy) error { return nil }

func (f *placementFake) AppPlacement(_ context.Context, app string) (api.PlacementPolicy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.app[app], nil
}

func (f *placementFake) SetAppPlacement(_ context.Context, app string, p api.PlacementPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.app[app] = p
	return nil
}

func (f *placementFake) DrainNode(_ context.Context, id string) (*api.Node, error) {
	return f.setDrain(id, true)
}

func (f *placementFake) UndrainNode(_ context.Context, id string) (*api.Node, error) {
	return f.setDrain(id, false)
}

func (f *placementFake) setDrain(id string, on bool) (*api.Node, error) {
	if id != "n1" {
		return nil, api.Errorf(api.ENotFound, "node %q has not reported", id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained[id] = on
	state := "ready"
	if on {
		state = "draining"
	}
	return &api.Node{ID: id, State: state}, nil
}

func TestPlacementEndpoints(t *testing.T) {
	var pf *placementFake
	h := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) {
		pf = &placementFake{app: map[string]api.PlacementPolicy{}, drained: map[string]bool{}}
		s.Placement = pf
	})
	user, admin := httpapitest.UserToken, httpapitest.AdminToken
	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            string // substring of the body
	}{
		{"set app placement", "PUT", "/v1/apps/hello/placement", user, `{"substrate":"metal","labels":{"zone":"a"}}`, 200, `"substrate":"metal"`},
		{"get app placement", "GET", "/v1/apps/hello/placement", user, "", 200, `"zone":"a"`},
		{"bad policy", "PUT", "/v1/apps/hello/placement", user, `{"substrate":"mainframe"}`, 400, "metal, vm or any"},
		{"bad json", "PUT", "/v1/apps/hello/placement", user, `{`, 400, "not valid JSON"},
		{"bad app name", "GET", "/v1/apps/Hello/placement", user, "", 400, "lowercase"},
		{"space needs admin", "PUT", "/v1/spaces/default/placement", user, `{"substrate":"vm"}`, 403, "admin"},
		{"set space placement", "PUT", "/v1/spaces/default/placement", admin, `{"substrate":"vm"}`, 200, `"substrate":"vm"`},
		{"unknown space", "PUT", "/v1/spaces/prod/placement", admin, `{}`, 404, "not found"},
		{"list spaces", "GET", "/v1/spaces", user, "", 200, `"placement":{"substrate":"vm"}`},
		{"org placement", "PUT", "/v1/org/placement", admin, `{"isolation":"process"}`, 200, `"isolation":"process"`},
		{"drain needs admin", "POST", "/v1/nodes/n1/drain", user, "", 403, "admin"},
		{"drain", "POST", "/v1/nodes/n1/drain", admin, "", 200, `"state":"draining"`},
		{"drain unknown", "POST", "/v1/nodes/n9/drain", admin, "", 404, "has not reported"},
		{"undrain", "POST", "/v1/nodes/n1/undrain", admin, "", 200, `"state":"ready"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			res := h.do(tc.method, tc.path, tc.token, body)
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%s %s: %d %s, want %d containing %q", tc.method, tc.path, res.StatusCode, string(b), tc.status, tc.want)
			}
		})
	}
	if pf.drained["n1"] || pf.space.Substrate != api.SubstrateVM || pf.app["hello"].Labels["zone"] != "a" {
		t.Fatalf("service state after the calls: drained %v, space %+v, app %+v", pf.drained, pf.space, pf.app["hello"])
	}
}

func TestPlacementUnsupported(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	if res := h.do("GET", "/v1/spaces", httpapitest.UserToken, nil); res.StatusCode != 501 {
		t.Fatalf("spaces without a placement service: %d, want 501", res.StatusCode)
	}
}
