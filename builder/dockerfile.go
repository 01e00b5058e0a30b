package builder

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// DockerfileName is the file the dockerfile buildpack detects.
const DockerfileName = "Dockerfile"

// MaxDockerfileSize bounds the Dockerfile read from an app.
const MaxDockerfileSize = 1 << 20

// DockerfileBuildpack detects a Dockerfile at the app's root. It compiles
// nothing itself: the stager builds such an app with a Docker engine's
// build API into an image, which then runs like an image deploy
// (docs/buildpacks.md, docs/containers.md). It comes after the language
// buildpacks and before procfile, so a Procfile next to a Dockerfile (or a
// manifest's commands) names the image's process types.
type DockerfileBuildpack struct{}

var _ Buildpack = (*DockerfileBuildpack)(nil)

// Name returns "dockerfile".
func (*DockerfileBuildpack) Name() string { return "dockerfile" }

// LooksFor returns "Dockerfile".
func (*DockerfileBuildpack) LooksFor() string { return DockerfileName }

// Detect reports whether the app has a Dockerfile.
func (*DockerfileBuildpack) Detect(_ context.Context, w *Workspace) (bool, error) {
	return exists(filepath.Join(w.SourceDir, DockerfileName))
}

// Compile is never the way a Dockerfile is built (the stager builds the
// image); it is reached only when the buildpack is combined with others.
func (*DockerfileBuildpack) Compile(context.Context, *Workspace) error {
	return appErrorf("the dockerfile buildpack builds an image and cannot be combined with other buildpacks — name it alone")
}

// Release returns the image's own entrypoint as the web process (an empty
// command).
func (*DockerfileBuildpack) Release(context.Context, *Workspace) (*ReleaseInfo, error) {
	return &ReleaseInfo{Processes: map[string]string{"web": ""}}, nil
}

// ReadDockerfile reads and parses the Dockerfile at the root of dir. A
// missing, oversized, non-regular or malformed Dockerfile is an *AppError.
func ReadDockerfile(dir string) (*Dockerfile, error) {
	data, err := readAppFile(dir, DockerfileName, MaxDockerfileSize)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, appErrorf("the app has no %s", DockerfileName)
	}
	return ParseDockerfile(data)
}

// Dockerfile is what Strata needs to know of a Dockerfile before building
// it: the images it starts from.
type Dockerfile struct {
	// Images are the images the build needs from the engine, in order of
	// first use, each once: every FROM that names neither an earlier stage
	// nor scratch, and every COPY --from= that names no stage. ARGs
	// declared before the first FROM are expanded with their defaults
	// (Strata passes no build arguments).
	Images []string
	// Stages is the number of FROM instructions.
	Stages int
}

// ParseDockerfile parses the instructions of a Dockerfile that decide which
// images it needs: parser directives (escape), comments, line
// continuations, ARG before the first FROM, FROM [--platform=…] image [AS
// name] and COPY --from=. A Dockerfile without FROM, an instruction before
// the first FROM other than ARG, a FROM with a variable that has no default,
// or a file larger than MaxDockerfileSize is an *AppError naming the line.
func ParseDockerfile(data []byte) (*Dockerfile, error) {
	if len(data) > MaxDockerfileSize {
		return nil, appErrorf("%s is larger than %d bytes", DockerfileName, MaxDockerfileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	escape := '\\'
	// Parser directives: "# key=value" lines at the very top.
	for i, l := range lines {
		k, v, ok := directive(l)
		if !ok {
			break
		}
		if k == "escape" {
			if v != "\\" && v != "`" {
				return nil, appErrorf("%s line %d: escape must be \\ or `, not %q", DockerfileName, i+1, clipName(v))
			}
			escape = rune(v[0])
		}
	}
	df := &Dockerfile{}
	args := map[string]string{} // ARGs before the first FROM, with their defaults
	stages := map[string]bool{}
	addImage := func(ref string) {
		if !slices.Contains(df.Images, ref) {
			df.Images = append(df.Images, ref)
		}
	}
	for n := 0; n < len(lines); n++ {
		start := n + 1
		l := strings.TrimSpace(lines[n])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		// Join continuation lines; comment and empty lines inside a
		// continued instruction are skipped, as Docker does.
		for strings.HasSuffix(l, string(escape)) && n+1 < len(lines) {
			l = strings.TrimSuffix(l, string(escape))
			n++
			for n < len(lines) {
				next := strings.TrimSpace(lines[n])
				if next != "" && !strings.HasPrefix(next, "#") {
					break
				}
				n++
			}
			if n >= len(lines) {
				break
			}
			l += " " + strings.TrimSpace(lines[n])
		}
		fields := strings.FieldsFunc(l, unicode.IsSpace)
		if len(fields) == 0 {
			continue
		}
		inst, rest := strings.ToUpper(fields[0]), fields[1:]
		switch inst {
		case "ARG":
			if df.Stages > 0 {
				continue // a stage's ARG: not used in FROM
			}
			for _, a := range rest {
				k, v, _ := strings.Cut(a, "=")
				args[k] = unquote(v)
			}
		case "FROM":
			for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
				rest = rest[1:] // --platform=…
			}
			if len(rest) != 1 && (len(rest) != 3 || !strings.EqualFold(rest[1], "AS")) {
				return nil, appErrorf("%s line %d: FROM takes an image and optionally AS name, as in \"FROM strata/stack:bookworm\"", DockerfileName, start)
			}
			ref, err := expand(rest[0], args)
			if err != nil {
				return nil, appErrorf("%s line %d: %s", DockerfileName, start, err)
			}
			if ref == "" {
				return nil, appErrorf("%s line %d: FROM names no image", DockerfileName, start)
			}
			if !stages[strings.ToLower(ref)] && !strings.EqualFold(ref, "scratch") {
				addImage(ref)
			}
			if len(rest) == 3 {
				stages[strings.ToLower(rest[2])] = true
			}
			df.Stages++
		case "COPY":
			if df.Stages == 0 {
				return nil, appErrorf("%s line %d: %s comes before the first FROM", DockerfileName, start, inst)
			}
			for _, f := range rest {
				if !strings.HasPrefix(f, "--") {
					break
				}
				from, ok := strings.CutPrefix(f, "--from=")
				if !ok {
					continue
				}
				if from == "" {
					return nil, appErrorf("%s line %d: COPY --from= names nothing", DockerfileName, start)
				}
				if isIndex(from) || stages[strings.ToLower(from)] {
					continue
				}
				if strings.Contains(from, "$") {
					return nil, appErrorf("%s line %d: COPY --from=%s uses a variable — name the stage or image", DockerfileName, start, clipName(from))
				}
				addImage(from)
			}
		default:
			if df.Stages == 0 {
				return nil, appErrorf("%s line %d: %s comes before the first FROM (only ARG may)", DockerfileName, start, clipName(inst))
			}
		}
	}
	if df.Stages == 0 {
		return nil, appErrorf("%s has no FROM — start it with \"FROM strata/stack:bookworm\"", DockerfileName)
	}
	return df, nil
}

// directive parses a parser directive line "# key=value".
func directive(l string) (key, value string, ok bool) {
	l = strings.TrimSpace(l)
	rest, ok := strings.CutPrefix(l, "#")
	if !ok {
		return "", "", false
	}
	k, v, ok := strings.Cut(rest, "=")
	if !ok {
		return "", "", false
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if k == "" || strings.ContainsFunc(k, unicode.IsSpace) {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

// expand replaces $NAME, ${NAME} and ${NAME:-word} in s with the ARG
// defaults in args. A variable without a value is an error.
func expand(s string, args map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		var name, def string
		hasDef := false
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q has an unclosed ${", clipName(s))
			}
			inner := s[i+2 : i+end]
			name, def, hasDef = strings.Cut(inner, ":-")
			i += end
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
			i = j - 1
		}
		if name == "" {
			return "", fmt.Errorf("%q has a $ without a variable name", clipName(s))
		}
		v := args[name]
		if v == "" && hasDef {
			v = def
		}
		if v == "" {
			return "", fmt.Errorf("FROM uses $%s, which has no default — give it one with ARG %s=… before FROM (Strata passes no build arguments)", clipName(name), clipName(name))
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

func isIndex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// clipName shortens user text quoted in messages.
func clipName(s string) string { return truncate(s, 60) }
