package stager_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/stager"
)

// BenchmarkRebuild measures the second build of an app with its build cache
// against the same build with NoCache (its peer, measured in the same run),
// for examples/hello-go and examples/hello-node, and reports the ratio:
//
//	go test ./stager -run XXX -bench BenchmarkRebuild -benchtime 3x
func BenchmarkRebuild(b *testing.B) {
	for _, app := range []string{"hello-go", "hello-node"} {
		b.Run(app, func(b *testing.B) {
			if app == "hello-node" {
				requireTool(b, "node")
			}
			s, err := stager.New(stager.Config{WorkDir: b.TempDir(), CacheDir: b.TempDir(), StaticServer: staticServer})
			if err != nil {
				b.Fatal(err)
			}
			src := sourceDir(b, filepath.Join("..", "examples", app))
			build := func(noCache bool) time.Duration {
				j := api.BuildJob{Version: api.MessageVersion, BuildID: "bench", AppID: "bench-" + app, AppName: app, NoCache: noCache}
				start := time.Now()
				res, err := s.Stage(context.Background(), j, bytes.NewReader(src), io.Discard)
				d := time.Since(start)
				if err != nil || res.Failure != "" {
					b.Fatalf("build: %v %+v", err, res)
				}
				os.Remove(res.DropletPath)
				return d
			}
			build(false) // the first build fills the cache
			var cached, uncached time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cached += build(false)
				uncached += build(true)
			}
			b.ReportMetric(cached.Seconds()/float64(b.N), "s/cached-build")
			b.ReportMetric(uncached.Seconds()/float64(b.N), "s/uncached-build")
			b.ReportMetric(uncached.Seconds()/cached.Seconds(), "uncached/cached")
		})
	}
}
