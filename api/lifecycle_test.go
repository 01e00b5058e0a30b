package api_test

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

func TestValidateEnvName(t *testing.T) {
	for name, ok := range map[string]bool{
		"GREETING": true, "_x": true, "a1": true, "DATABASE_URL": true,
		"": false, "1A": false, "A-B": false, "A B": false, "Ä": false,
		"LD_PRELOAD": false, "ld_library_path": false, "LD_AUDIT": false, "LD_ANYTHING": false,
		"BASH_ENV": false, "ENV": false, "IFS": false, "GLIBC_TUNABLES": false, "BASH_FUNC_f%%": false,
		"PORT": false, "HOME": false, "PATH": false, "STRATA_APP": false, "VCAP_SERVICES": false,
		strings.Repeat("A", api.MaxEnvNameLength+1): false,
	} {
		err := api.ValidateEnvName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateEnvName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && (api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), " — ")) {
			t.Errorf("ValidateEnvName(%q) = %v, want invalid with advice", name, err)
		}
	}
}

func TestParseEnvAssignment(t *testing.T) {
	for _, tc := range []struct{ in, k, v string }{
		{"A=1", "A", "1"}, {"A=", "A", ""}, {"URL=postgres://x?a=b", "URL", "postgres://x?a=b"},
	} {
		k, v, err := api.ParseEnvAssignment(tc.in)
		if err != nil || k != tc.k || v != tc.v {
			t.Errorf("%q → %q %q %v", tc.in, k, v, err)
		}
	}
	for _, in := range []string{"A", "=1", "A=1\n", "LD_PRELOAD=/x", "A=\x00"} {
		if _, _, err := api.ParseEnvAssignment(in); api.ErrorCode(err) != api.EInvalid {
			t.Errorf("%q: err = %v, want invalid", in, err)
		}
	}
	env := map[string]string{}
	for i := 0; i <= api.MaxEnvVars; i++ {
		env["V"+strings.Repeat("X", i%7)+string(rune('A'+i%26))+strings.Repeat("_", i/26)] = "1"
	}
	if len(env) > api.MaxEnvVars && api.ValidateEnv(env) == nil {
		t.Errorf("%d vars accepted, limit %d", len(env), api.MaxEnvVars)
	}
}

func FuzzParseEnvAssignment(f *testing.F) {
	for _, s := range []string{"A=1", "=", "LD_PRELOAD=x", "a=b=c", "A=\n", "_=\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := api.ParseEnvAssignment(s)
		if err != nil {
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("%q: code %q", s, api.ErrorCode(err))
			}
			return
		}
		if k+"="+v != s {
			t.Fatalf("%q split into %q %q", s, k, v)
		}
		if strings.ContainsAny(v, "\x00\r\n") || strings.ContainsAny(k, "=\x00 ") || strings.HasPrefix(strings.ToUpper(k), "LD_") {
			t.Fatalf("%q accepted as %q=%q", s, k, v)
		}
		if api.ValidateEnv(map[string]string{k: v}) != nil {
			t.Fatalf("%q parsed but the env does not validate", s)
		}
	})
}
