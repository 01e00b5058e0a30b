package stager_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/builder"
	"github.com/strata-paas/strata/stager"
)

// fakeImages is an engine that has the images in have and "builds" by
// recording the context's file names and labels.
type fakeImages struct {
	have    []string
	asked   []string
	files   []string
	labels  map[string]string
	memory  int
	failure error
}

func (f *fakeImages) HasImage(_ context.Context, ref string) (bool, error) {
	f.asked = append(f.asked, ref)
	return slices.Contains(f.have, ref), nil
}

func (f *fakeImages) BuildImage(_ context.Context, buildContext io.Reader, labels map[string]string, memoryMB int, out, save io.Writer) error {
	f.labels, f.memory = labels, memoryMB
	zr, err := gzip.NewReader(buildContext)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		f.files = append(f.files, h.Name)
	}
	io.WriteString(out, "Step 1/2 : FROM strata/stack:bookworm\n")
	if f.failure != nil {
		return f.failure
	}
	_, err = io.WriteString(save, "image tarball")
	return err
}

func dockerfileStager(t *testing.T, images stager.ImageBuilder) *stager.Stager {
	t.Helper()
	s, err := stager.New(stager.Config{
		WorkDir: t.TempDir(), CacheDir: t.TempDir(), StaticServer: staticServer,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Images: images, Confine: stager.ConfineNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStageDockerfile(t *testing.T) {
	fake := &fakeImages{have: []string{"strata/stack:bookworm"}}
	s := dockerfileStager(t, fake)
	src := sourceOf(t, map[string]string{
		"Dockerfile": "FROM strata/stack:bookworm\nCOPY server.py /app/\nCMD [\"python3\", \"/app/server.py\"]\n",
		"server.py":  "print('hi')\n",
		"Procfile":   "worker: python3 /app/server.py --worker\n",
	})
	var out bytes.Buffer
	res, err := s.Stage(context.Background(), api.BuildJob{BuildID: "b1", AppID: "app1", AppName: "df"}, bytes.NewReader(src), &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failure != "" {
		t.Fatalf("failed: %s %s\n%s", res.Failure, res.Reason, out.String())
	}
	defer os.Remove(res.DropletPath)
	if res.Info.Buildpack != api.BuildpackDockerfile || res.Info.Buildpack != (&builder.DockerfileBuildpack{}).Name() {
		t.Errorf("buildpack %q", res.Info.Buildpack)
	}
	if want := map[string]string{"web": "", "worker": "python3 /app/server.py --worker"}; !maps.Equal(res.Info.Processes, want) {
		t.Errorf("processes %v, want %v", res.Info.Processes, want)
	}
	if b, _ := os.ReadFile(res.DropletPath); string(b) != "image tarball" {
		t.Errorf("the result holds %q, not the saved image", b)
	}
	if !slices.Contains(fake.files, "Dockerfile") || !slices.Contains(fake.files, "server.py") {
		t.Errorf("build context %v", fake.files)
	}
	if len(fake.labels) != 1 || fake.labels["io.strata.build"] != "b1" || fake.memory != stager.DefaultBuildMemoryMB {
		t.Errorf("labels %v memory %d", fake.labels, fake.memory)
	}
	for _, want := range []string{"dockerfile app detected", "Step 1/2 : FROM strata/stack:bookworm", "web: (the image's entrypoint)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStageDockerfileFailures(t *testing.T) {
	for _, tt := range []struct {
		name       string
		images     stager.ImageBuilder
		dockerfile string
		failure    api.BuildFailure
		reason     string
	}{
		{"missing FROM image", &fakeImages{have: []string{"strata/stack:bookworm"}}, "FROM strata/stack:bookworm AS b\nFROM debian:12\nCOPY --from=b /x /x\n",
			api.FailCompile, "starts from debian:12, which the builder's Docker engine does not have, and no registry is reachable to pull it — start FROM strata/stack:bookworm"},
		{"no engine", nil, "FROM strata/stack:bookworm\n", api.FailNoBuildpack, "this builder has no Docker engine"},
		{"malformed", &fakeImages{}, "RUN echo\n", api.FailCompile, "Dockerfile line 1: RUN comes before the first FROM"},
		{"step fails", &fakeImages{have: []string{"strata/stack:bookworm"}, failure: api.Errorf(api.EInvalid, "the Dockerfile build failed: exit 1")},
			"FROM strata/stack:bookworm\nRUN false\n", api.FailCompile, "the Dockerfile build failed: exit 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := dockerfileStager(t, tt.images)
			var out bytes.Buffer
			src := sourceOf(t, map[string]string{"Dockerfile": tt.dockerfile})
			res, err := s.Stage(context.Background(), api.BuildJob{BuildID: "b1", AppID: "app1"}, bytes.NewReader(src), &out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failure != tt.failure || !strings.Contains(res.Reason, tt.reason) || res.DropletPath != "" {
				t.Fatalf("result %+v, want %s with %q", res, tt.failure, tt.reason)
			}
			if !strings.Contains(out.String(), tt.reason) {
				t.Errorf("the pusher is not told why:\n%s", out.String())
			}
		})
	}
	// A platform failure of the engine is an error, not the app's fault.
	fake := &fakeImages{have: []string{"strata/stack:bookworm"}, failure: api.Errorf(api.EUnavailable, "engine gone")}
	s := dockerfileStager(t, fake)
	src := sourceOf(t, map[string]string{"Dockerfile": "FROM strata/stack:bookworm\n"})
	if res, err := s.Stage(context.Background(), api.BuildJob{BuildID: "b1", AppID: "app1"}, bytes.NewReader(src), io.Discard); err == nil {
		t.Fatalf("engine failure gave %+v, want an error", res)
	}
}
