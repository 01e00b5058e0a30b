package gitpush

import (
	"strings"
	"unicode/utf8"
)

const maxRefLength = 255

// checkBranchRef returns why name is refused as a pushed ref, or "" when it
// is a safe branch: under refs/heads/, git's check-ref-format rules, no
// control characters or delimiters, and no component starting with '-'
// (so it can never be mistaken for an option).
func checkBranchRef(name string) string {
	branch, ok := strings.CutPrefix(name, "refs/heads/")
	if !ok {
		return "only branches can be pushed (refs/heads/…)"
	}
	if branch == "" {
		return "empty branch name"
	}
	if len(name) > maxRefLength {
		return "branch name too long"
	}
	if !utf8.ValidString(branch) {
		return "branch name is not valid UTF-8"
	}
	for i := 0; i < len(branch); i++ {
		c := branch[i]
		if c < 0x20 || c == 0x7f {
			return "branch name contains control characters"
		}
		if strings.IndexByte(" ~^:?*[\\\"'`$;&|<>", c) >= 0 {
			return "branch name contains a forbidden character"
		}
	}
	if strings.Contains(branch, "..") || strings.Contains(branch, "@{") || branch == "@" {
		return "branch name contains a forbidden sequence"
	}
	if strings.HasSuffix(branch, ".") {
		return "branch name must not end with '.'"
	}
	for _, comp := range strings.Split(branch, "/") {
		switch {
		case comp == "":
			return "branch name has an empty component"
		case comp[0] == '-':
			return "branch name components must not start with '-'"
		case comp[0] == '.':
			return "branch name components must not start with '.'"
		case strings.HasSuffix(comp, ".lock"):
			return "branch name components must not end with .lock"
		}
	}
	return ""
}
