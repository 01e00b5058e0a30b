package builder

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a release version major.minor.patch (no pre-release).
type Version [3]int

// ParseVersion parses "20.11.1" or "v20.11.1".
func ParseVersion(s string) (Version, error) {
	var v Version
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("version %q is not major.minor.patch", truncate(s, 40))
	}
	for i, p := range parts {
		n, ok := versionNumber(p)
		if !ok {
			return v, fmt.Errorf("version %q is not major.minor.patch", truncate(s, 40))
		}
		v[i] = n
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func (v Version) cmp(o Version) int {
	for i := range v {
		if v[i] != o[i] {
			if v[i] < o[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionNumber parses one numeric part: 1–9 decimal digits.
func versionNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// VersionRange is a parsed npm version range such as ">=18 <21",
// "^20.1 || ~18.19", "18.x" or "16 - 20".
type VersionRange struct {
	sets [][]comparator // any set matches when all its comparators do
}

type comparator struct {
	op string // ">=", "<", ">", "<=", "="
	v  Version
}

// MaxRangeSize bounds a version range read from an app.
const MaxRangeSize = 256

// ParseRange parses the npm range syntax used by engines fields: "||"
// alternatives of space-separated comparators (<, <=, >, >=, =), partial
// versions with x/X/* wildcards, ~ and ^ ranges and hyphen ranges. An empty
// range matches every version. Pre-release versions and tags such as
// "latest" are errors saying so.
func ParseRange(s string) (*VersionRange, error) {
	if len(s) > MaxRangeSize {
		return nil, fmt.Errorf("version range is longer than %d characters", MaxRangeSize)
	}
	r := &VersionRange{}
	for _, alt := range strings.Split(s, "||") {
		set, err := parseComparatorSet(alt)
		if err != nil {
			return nil, err
		}
		r.sets = append(r.sets, set)
	}
	return r, nil
}

// Match reports whether v is in the range.
func (r *VersionRange) Match(v Version) bool {
	for _, set := range r.sets {
		ok := true
		for _, c := range set {
			d := v.cmp(c.v)
			switch c.op {
			case ">=":
				ok = d >= 0
			case ">":
				ok = d > 0
			case "<":
				ok = d < 0
			case "<=":
				ok = d <= 0
			default:
				ok = d == 0
			}
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// partial is a version with some trailing parts missing or wildcards: n is
// how many parts were given (0–3).
type partial struct {
	v Version
	n int
}

func parsePartial(s string) (partial, error) {
	var p partial
	s = strings.TrimPrefix(strings.TrimPrefix(s, "="), "v")
	if strings.ContainsAny(s, "-+") {
		return p, fmt.Errorf("%q: pre-release and build versions are not supported in ranges", truncate(s, 40))
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return p, fmt.Errorf("%q is not a version", truncate(s, 40))
	}
	for i, part := range parts {
		if part == "x" || part == "X" || part == "*" {
			break
		}
		n, ok := versionNumber(part)
		if !ok {
			return p, fmt.Errorf("%q is not a version", truncate(s, 40))
		}
		p.v[i] = n
		p.n = i + 1
	}
	return p, nil
}

// next returns the lowest version above every version the partial covers
// (1.2 → 1.3.0, 1 → 2.0.0); ok is false for a full or empty partial.
func (p partial) next() (Version, bool) {
	switch p.n {
	case 1:
		return Version{p.v[0] + 1, 0, 0}, true
	case 2:
		return Version{p.v[0], p.v[1] + 1, 0}, true
	}
	return Version{}, false
}

func parseComparatorSet(s string) ([]comparator, error) {
	fields := strings.Fields(s)
	// Operators may be separated from their version: ">= 18".
	var toks []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if (f == ">=" || f == "<=" || f == ">" || f == "<" || f == "=" || f == "~" || f == "^") && i+1 < len(fields) {
			f += fields[i+1]
			i++
		}
		toks = append(toks, f)
	}
	if len(toks) == 0 {
		return nil, nil // any version
	}
	if len(toks) == 3 && toks[1] == "-" {
		return hyphenRange(toks[0], toks[2])
	}
	var set []comparator
	for _, t := range toks {
		cs, err := parseSimple(t)
		if err != nil {
			return nil, err
		}
		set = append(set, cs...)
	}
	return set, nil
}

func hyphenRange(lo, hi string) ([]comparator, error) {
	a, err := parsePartial(lo)
	if err != nil {
		return nil, err
	}
	b, err := parsePartial(hi)
	if err != nil {
		return nil, err
	}
	set := []comparator{{">=", a.v}}
	if next, ok := b.next(); ok {
		set = append(set, comparator{"<", next})
	} else if b.n == 3 {
		set = append(set, comparator{"<=", b.v})
	}
	return set, nil
}

func parseSimple(t string) ([]comparator, error) {
	op := ""
	for _, o := range []string{">=", "<=", ">", "<", "=", "~>", "~", "^"} {
		if strings.HasPrefix(t, o) {
			op, t = o, t[len(o):]
			break
		}
	}
	p, err := parsePartial(t)
	if err != nil {
		return nil, err
	}
	next, partialNext := p.next()
	switch op {
	case "", "=":
		if p.n == 0 {
			return nil, nil
		}
		if partialNext {
			return []comparator{{">=", p.v}, {"<", next}}, nil
		}
		return []comparator{{"=", p.v}}, nil
	case ">=":
		return []comparator{{">=", p.v}}, nil
	case ">":
		if p.n == 0 {
			return []comparator{{"<", Version{}}}, nil // nothing is above every version
		}
		if partialNext {
			return []comparator{{">=", next}}, nil
		}
		return []comparator{{">", p.v}}, nil
	case "<":
		return []comparator{{"<", p.v}}, nil
	case "<=":
		if p.n == 0 {
			return nil, nil
		}
		if partialNext {
			return []comparator{{"<", next}}, nil
		}
		return []comparator{{"<=", p.v}}, nil
	case "~", "~>":
		if p.n == 0 {
			return nil, nil
		}
		if p.n == 1 {
			return []comparator{{">=", p.v}, {"<", Version{p.v[0] + 1, 0, 0}}}, nil
		}
		return []comparator{{">=", p.v}, {"<", Version{p.v[0], p.v[1] + 1, 0}}}, nil
	default: // "^": the left-most non-zero part may not change
		if p.n == 0 {
			return nil, nil
		}
		var hi Version
		switch {
		case p.v[0] > 0 || p.n == 1:
			hi = Version{p.v[0] + 1, 0, 0}
		case p.v[1] > 0 || p.n == 2:
			hi = Version{0, p.v[1] + 1, 0}
		default:
			hi = Version{0, 0, p.v[2] + 1}
		}
		return []comparator{{">=", p.v}, {"<", hi}}, nil
	}
}
