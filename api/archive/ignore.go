package archive

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ignoreFiles are the files Pack reads ignore patterns from, in order of
// preference: the first one present in the packed directory wins.
func ignoreFiles() []string { return []string{".stratignore", ".cfignore", ".gitignore"} }

// ignoreRule is one gitignore pattern.
type ignoreRule struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
}

// Matcher decides whether a path is ignored, with gitignore semantics: the
// last matching pattern wins, "!" negates, a trailing "/" matches only
// directories, a pattern containing "/" is anchored to the root, "**" matches
// across directories. A Matcher is safe for concurrent use.
type Matcher struct {
	rules []ignoreRule
}

// ParseIgnore parses gitignore-syntax patterns. Invalid patterns are skipped,
// as git does.
func ParseIgnore(data []byte) *Matcher {
	m := &Matcher{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if r, ok := parseRule(sc.Text()); ok {
			m.rules = append(m.rules, r)
		}
	}
	return m
}

// loadIgnore returns the matcher of the first ignore file present in dir, or
// an empty matcher.
func loadIgnore(dir string) (*Matcher, error) {
	for _, name := range ignoreFiles() {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return ParseIgnore(data), nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return &Matcher{}, nil
}

func parseRule(line string) (ignoreRule, bool) {
	line = strings.TrimSuffix(line, "\r")
	// Trailing spaces are ignored unless escaped with a backslash.
	for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, "\\ ") {
		line = line[:len(line)-1]
	}
	if line == "" || strings.HasPrefix(line, "#") {
		return ignoreRule{}, false
	}
	var r ignoreRule
	if strings.HasPrefix(line, "!") {
		r.negate = true
		line = line[1:]
	} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	if line == "" {
		return ignoreRule{}, false
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	prefix := "^"
	if !anchored {
		prefix = "^(?:.*/)?"
	}
	re, err := regexp.Compile(prefix + globToRegexp(line) + "$")
	if err != nil {
		return ignoreRule{}, false
	}
	r.re = re
	return r, true
}

// globToRegexp translates a gitignore glob (without leading "/" or trailing
// "/") to a regular expression body.
func globToRegexp(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch {
		case c == '*' && strings.HasPrefix(g[i:], "**"):
			atStart := i == 0 || g[i-1] == '/'
			rest := g[i+2:]
			switch {
			case atStart && strings.HasPrefix(rest, "/"):
				b.WriteString("(?:.*/)?") // "**/": zero or more directories
				i += 2
			case atStart && rest == "":
				b.WriteString(".*") // trailing "/**": everything inside
				i++
			default:
				b.WriteString("[^/]*") // "**" elsewhere acts as "*"
				i++
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(g[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := g[i+1 : i+1+end]
			if end == 0 { // "[]...]": a literal ] first in the class
				end2 := strings.IndexByte(g[i+2:], ']')
				if end2 < 0 {
					b.WriteString(`\[`)
					continue
				}
				class = g[i+1 : i+2+end2]
				end = end2 + 1
			}
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			class = strings.ReplaceAll(class, `\`, `\\`)
			class = strings.ReplaceAll(class, "[", `\[`)
			b.WriteString("[" + class + "]")
			i += end + 1
		case c == '\\' && i+1 < len(g):
			i++
			b.WriteString(regexp.QuoteMeta(string(g[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// Match reports whether rel (slash-separated, relative to the packed
// directory) is ignored. isDir says whether rel is a directory. Parents are
// not consulted: Pack skips the contents of an ignored directory itself, as
// git does.
func (m *Matcher) Match(rel string, isDir bool) bool {
	ignored := false
	for _, r := range m.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(rel) {
			ignored = !r.negate
		}
	}
	return ignored
}
