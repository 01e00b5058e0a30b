package controller_test

import (
	"testing"

	"github.com/strata-paas/strata/api"
)

// A build of a Dockerfile (buildpack dockerfile) staged an image tarball,
// not a droplet: its release runs it as an image deploy (ImageBlob), in a
// container, with the image's own command for web.
func TestDockerfileBuildReleasesAnImage(t *testing.T) {
	srv := newServer(t)
	e := newEnv(t, srv, nil, nil)
	e.run()
	startBuilder(t, srv, &fakeBuilder{buildpack: api.BuildpackDockerfile, procs: map[string]string{"web": ""}})
	x := startExecutor(t, srv, "with-docker", func(x *fakeExecutor) {
		x.isolations = []api.Isolation{api.IsolationProcess, api.IsolationContainer}
	})
	ctx := e.ctx()
	res, err := e.ctrl.Deploys.Deploy(ctx, api.DeployRequest{App: "df", Source: source(), CreateApp: true, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Release.ImageBlob.Valid() || res.Release.DropletBlob != "" || res.Release.Image != "" || res.Release.BuildID == "" {
		t.Fatalf("release %+v, want the build's tarball as its image blob", res.Release)
	}
	starts, _, _ := x.snapshot()
	if len(starts) != 1 || starts[0].ImageBlob != res.Release.ImageBlob || starts[0].DropletBlob != "" || starts[0].Isolation != api.IsolationContainer || starts[0].Command != "" {
		t.Fatalf("starts %+v", starts)
	}
}
