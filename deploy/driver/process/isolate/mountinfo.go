package isolate

import (
	"strconv"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo.
type Mount struct {
	Point     string // mount point, unescaped
	FSType    string
	Source    string
	SuperOpts []string // per-superblock options, e.g. "memory" for a cgroup v1 hierarchy
}

// ParseMountinfo parses the contents of /proc/<pid>/mountinfo. Malformed
// lines are skipped.
func ParseMountinfo(data string) []Mount {
	var out []Mount
	for line := range strings.SplitSeq(data, "\n") {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			continue
		}
		m := Mount{Point: unescapeOctal(f[4]), FSType: g[0], Source: unescapeOctal(g[1])}
		if len(g) > 2 {
			m.SuperOpts = strings.Split(g[2], ",")
		}
		out = append(out, m)
	}
	return out
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs, newlines
// and backslashes in mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
