package builder_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/builder"
)

func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		stages  int
		wantErr string
	}{
		{"one", "FROM strata/stack:bookworm\nCMD [\"x\"]\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"lowercase and comments", "# a comment\n\nfrom  strata/stack:bookworm  \nrun echo hi\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"platform flag and AS", "FROM --platform=linux/amd64 strata/stack:bookworm AS build\nFROM scratch\nCOPY --from=build /x /x\n", []string{"strata/stack:bookworm"}, 2, ""},
		{"stage reused by name", "FROM strata/stack:bookworm AS Base\nFROM base\n", []string{"strata/stack:bookworm"}, 2, ""},
		{"copy from image", "FROM scratch\nCOPY --chown=1:1 --from=busybox:1 /bin/sh /sh\nCOPY --from=0 /a /b\n", []string{"busybox:1"}, 1, ""},
		{"each once", "FROM a:1\nFROM a:1\nFROM b\n", []string{"a:1", "b"}, 3, ""},
		{"arg default", "ARG BASE=strata/stack\nARG TAG=\"bookworm\"\nFROM ${BASE}:$TAG\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"arg fallback", "ARG TAG\nFROM strata/stack:${TAG:-bookworm}\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"continuation", "FROM \\\n  strata/stack:bookworm\nRUN a \\\n# inside\n  b\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"escape directive", "# escape=`\nFROM `\n strata/stack:bookworm\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"crlf and bom", "\xef\xbb\xbfFROM strata/stack:bookworm\r\nCMD x\r\n", []string{"strata/stack:bookworm"}, 1, ""},
		{"scratch only", "FROM scratch\nCOPY x /x\n", nil, 1, ""},
		{"no from", "RUN echo\n", nil, 0, "before the first FROM"},
		{"empty", "", nil, 0, "has no FROM"},
		{"arg without default", "ARG BASE\nFROM $BASE\n", nil, 0, "line 2: FROM uses $BASE, which has no default"},
		{"unclosed", "FROM ${BASE\n", nil, 0, "unclosed"},
		{"from too many words", "FROM a b\n", nil, 0, "line 1: FROM takes an image"},
		{"from nothing", "FROM\n", nil, 0, "line 1: FROM takes an image"},
		{"copy from variable", "FROM scratch\nCOPY --from=$X /a /b\n", nil, 0, "line 2: COPY --from=$X uses a variable"},
		{"bad escape", "# escape=x\nFROM a\n", nil, 0, "escape must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			df, err := builder.ParseDockerfile([]byte(tt.in))
			if tt.wantErr != "" {
				var ae *builder.AppError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want an AppError with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(df.Images, tt.want) || df.Stages != tt.stages {
				t.Errorf("images %q stages %d, want %q %d", df.Images, df.Stages, tt.want, tt.stages)
			}
		})
	}
}

func TestParseDockerfileTooLarge(t *testing.T) {
	big := "FROM a\n" + strings.Repeat("#", builder.MaxDockerfileSize)
	if _, err := builder.ParseDockerfile([]byte(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestDetectDockerfile(t *testing.T) {
	bps := builder.Default(builder.Config{StaticServer: "/nonexistent"})
	for _, tt := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"Dockerfile": "FROM a", "Procfile": "web: x"}, "dockerfile"},
		{map[string]string{"Dockerfile": "FROM a", "server.py": ""}, "dockerfile"},
		{map[string]string{"Dockerfile": "FROM a", "go.mod": "module x"}, "go"},
		{map[string]string{"Dockerfile": "FROM a", "index.html": ""}, "static"},
	} {
		bp, err := builder.Detect(context.Background(), bps, workspace(t, tt.files))
		if err != nil || bp == nil || bp.Name() != tt.want {
			t.Errorf("files %v: detected %v (%v), want %s", tt.files, bp, err, tt.want)
		}
	}
	w := workspace(t, map[string]string{"Dockerfile": "FROM strata/stack:bookworm\n"})
	df, err := builder.ReadDockerfile(w.SourceDir)
	if err != nil || !slices.Equal(df.Images, []string{"strata/stack:bookworm"}) {
		t.Fatalf("ReadDockerfile: %v, %v", df, err)
	}
	if _, err := builder.ReadDockerfile(t.TempDir()); err == nil {
		t.Fatal("ReadDockerfile of a dir without one: no error")
	}
}

// FuzzParseDockerfile: any input parses or is refused with an AppError,
// never panics, and what it reports is well-formed.
func FuzzParseDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM strata/stack:bookworm\n", "ARG A=b\nFROM $A AS x\nFROM x\nCOPY --from=y /a /b\n",
		"# escape=`\nFROM `\n a\n", "FROM ${A:-b}\n", "FROM ${\n", "FROM \\", "\\\n\\\n", "FROM $\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := builder.ParseDockerfile(data)
		if err != nil {
			var ae *builder.AppError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an AppError", err)
			}
			return
		}
		if df.Stages < 1 {
			t.Fatalf("parsed with %d stages", df.Stages)
		}
		for i, img := range df.Images {
			if img == "" || strings.EqualFold(img, "scratch") || slices.Contains(df.Images[:i], img) {
				t.Fatalf("images %q", df.Images)
			}
		}
	})
}
