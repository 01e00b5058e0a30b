package builder_test

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/builder"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		rng string
		in  []string
		out []string
		bad bool
	}{
		{rng: "", in: []string{"0.0.0", "20.11.1"}},
		{rng: "*", in: []string{"0.0.1", "99.0.0"}},
		{rng: ">=18", in: []string{"18.0.0", "20.11.1"}, out: []string{"17.9.9"}},
		{rng: ">= 18 <21", in: []string{"20.99.0"}, out: []string{"21.0.0", "16.0.0"}},
		{rng: "20.x", in: []string{"20.0.0", "20.11.1"}, out: []string{"21.0.0", "19.9.9"}},
		{rng: "20", in: []string{"20.5.0"}, out: []string{"21.0.0"}},
		{rng: "20.11", in: []string{"20.11.9"}, out: []string{"20.12.0"}},
		{rng: "20.11.1", in: []string{"20.11.1"}, out: []string{"20.11.2"}},
		{rng: "v20.11.1", in: []string{"20.11.1"}},
		{rng: "=20.11.1", in: []string{"20.11.1"}, out: []string{"20.11.0"}},
		{rng: "^20.1", in: []string{"20.1.0", "20.9.0"}, out: []string{"21.0.0", "20.0.9"}},
		{rng: "^0.2.3", in: []string{"0.2.9"}, out: []string{"0.3.0"}},
		{rng: "^0.0.3", in: []string{"0.0.3"}, out: []string{"0.0.4"}},
		{rng: "~20.1.2", in: []string{"20.1.9"}, out: []string{"20.2.0", "20.1.1"}},
		{rng: "~20", in: []string{"20.9.9"}, out: []string{"21.0.0"}},
		{rng: ">18", in: []string{"19.0.0"}, out: []string{"18.9.9"}},
		{rng: ">18.1", in: []string{"18.2.0"}, out: []string{"18.1.9"}},
		{rng: "<=18", in: []string{"18.9.9"}, out: []string{"19.0.0"}},
		{rng: "<18", in: []string{"17.9.9"}, out: []string{"18.0.0"}},
		{rng: "16 - 20", in: []string{"16.0.0", "20.9.9"}, out: []string{"21.0.0", "15.9.9"}},
		{rng: "16.1.2 - 20.1.2", in: []string{"20.1.2"}, out: []string{"20.1.3"}},
		{rng: "^16 || ^18 || >=20", in: []string{"16.1.0", "18.0.0", "22.0.0"}, out: []string{"17.0.0", "19.1.1"}},
		{rng: "lts/*", bad: true},
		{rng: "latest", bad: true},
		{rng: ">=20.0.0-rc.1", bad: true},
		{rng: "1.2.3.4", bad: true},
		{rng: "99999999999", bad: true},
		{rng: strings.Repeat("1 ", 200), bad: true},
	}
	for _, tt := range tests {
		r, err := builder.ParseRange(tt.rng)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseRange(%q) accepted, want an error", tt.rng)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRange(%q): %v", tt.rng, err)
			continue
		}
		for _, s := range tt.in {
			if !r.Match(mustVersion(t, s)) {
				t.Errorf("%q does not match %s, want it to", tt.rng, s)
			}
		}
		for _, s := range tt.out {
			if r.Match(mustVersion(t, s)) {
				t.Errorf("%q matches %s, want it not to", tt.rng, s)
			}
		}
	}
}

func mustVersion(t *testing.T, s string) builder.Version {
	t.Helper()
	v, err := builder.ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{">=18", "^20.1 || ~18.19", "16 - 20", "20.x", "*", ">= 1 <2", "lts/*", "1.2.3-rc", "||", "- 2"} {
		f.Add(s, uint16(20), uint16(11), uint16(1))
	}
	f.Fuzz(func(t *testing.T, s string, a, b, c uint16) {
		r, err := builder.ParseRange(s)
		if err != nil {
			return
		}
		v := builder.Version{int(a), int(b), int(c)}
		got := r.Match(v)
		// A range is a union of its alternatives.
		any := false
		for _, alt := range strings.Split(s, "||") {
			ar, err := builder.ParseRange(alt)
			if err != nil {
				t.Fatalf("%q parses but its alternative %q does not: %v", s, alt, err)
			}
			any = any || ar.Match(v)
		}
		if got != any {
			t.Fatalf("%q matches %v = %v, its alternatives say %v", s, v, got, any)
		}
	})
}

func FuzzParsePackageJSON(f *testing.F) {
	for _, s := range []string{`{"engines":{"node":">=18"},"scripts":{"start":"node ."},"dependencies":{"a":"1"}}`, `{}`, `[]`, `null`, `{"engines":{"node":18}}`, `{"scripts":{"x":1}}`, "\xef\xbb\xbf{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := builder.ParsePackageJSON(data)
		if err != nil {
			if _, ok := err.(*builder.AppError); !ok {
				t.Fatalf("error %T %v is not an *AppError", err, err)
			}
			return
		}
		if p.Dependencies < 0 || p.DevDependencies < 0 || p.Scripts == nil {
			t.Fatalf("parsed %+v", p)
		}
		_, _ = builder.ParseRange(p.EnginesNode)
	})
}

func FuzzParsePythonVersion(f *testing.F) {
	for _, s := range []string{"3.11\n", "3.11.7", "system", "# c\n\n3\n", "python-3.12", "pypy3.9-7.3.9", "3.x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := builder.ParsePythonVersion(data)
		if err != nil {
			if _, ok := err.(*builder.AppError); !ok {
				t.Fatalf("error %T %v is not an *AppError", err, err)
			}
			return
		}
		if !req.Any && (req.Major != 3 || req.Minor < -1 || req.Patch < -1 || (req.Minor < 0 && req.Patch >= 0)) {
			t.Fatalf("parsed %+v", req)
		}
	})
}

func TestParsePythonVersion(t *testing.T) {
	for in, want := range map[string]string{"3.11\n": "3.11", "3.11.7": "3.11.7", "system": "any", "# pinned\n\n3\n": "3", "python-3.12": "3.12", "": "any"} {
		req, err := builder.ParsePythonVersion([]byte(in))
		if err != nil || req.String() != want {
			t.Errorf("ParsePythonVersion(%q) = %v %v, want %s", in, req, err, want)
		}
	}
	for _, in := range []string{"pypy3.9-7.3.9", "2.7", "3.x", "3.11.7.1", "anaconda3"} {
		if _, err := builder.ParsePythonVersion([]byte(in)); err == nil {
			t.Errorf("ParsePythonVersion(%q) accepted", in)
		}
	}
}
