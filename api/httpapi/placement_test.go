package httpapi_test

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

func TestPlacementEndpoints(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	h.createApp("hello")
	user, admin := h.env.UserToken, h.env.AdminToken
	node := "/v1/nodes/" + httpapitest.NodeID
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
		{"drain needs admin", "POST", node + "/drain", user, "", 403, "admin"},
		{"drain", "POST", node + "/drain", admin, "", 200, `"state":"draining"`},
		{"drain unknown", "POST", "/v1/nodes/n9/drain", admin, "", 404, "has not reported"},
		{"undrain", "POST", node + "/undrain", admin, "", 200, `"state":"ready"`},
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
	// What the service holds after the calls.
	ctx := h.env.AdminContext()
	app, err := h.env.Controller.Placement.AppPlacement(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	spaces, err := h.env.Controller.Placement.Spaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(spaces, func(s *api.SpaceInfo) bool { return s.Name == "default" })
	nodes := h.env.Controller.Nodes.List()
	if len(nodes) != 1 || nodes[0].State != "ready" || i < 0 || spaces[i].Placement.Substrate != api.SubstrateVM || app.Labels["zone"] != "a" {
		t.Fatalf("service state after the calls: nodes %+v, spaces %+v, app %+v", nodes, spaces, app)
	}
}

func TestPlacementUnsupported(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) {
		s.Placement = httpapi.Unsupported{What: "managing placement and node drain"}
	})
	if res := h.do("GET", "/v1/spaces", h.env.UserToken, nil); res.StatusCode != 501 {
		t.Fatalf("spaces without a placement service: %d, want 501", res.StatusCode)
	}
}
