package api

import (
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "admin", "Space-Developer", "space-developer ", "org-manager\x00"} {
		if _, err := ParseRole(bad); ErrorCode(err) != EInvalid {
			t.Errorf("ParseRole(%q) = %v, want invalid", bad, err)
		}
	}
	if !RoleSpaceAuditor.IsSpaceRole() || RoleOrgAuditor.IsSpaceRole() {
		t.Error("IsSpaceRole")
	}
}

// Targets arrive in headers anyone can send and in the CLI's environment:
// Validate accepts exactly names (or the empty defaults), and a role name
// parses only as itself.
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"acme", "", "dev-1", "../x", "a b", "x--", "xn--y", strings.Repeat("a", 64), "space-developer"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, org, space string) {
		err := (Target{Org: org, Space: space}).Validate()
		ok := (org == "" || ValidateName("org", org) == nil) && (space == "" || ValidateName("space", space) == nil)
		if (err == nil) != ok {
			t.Fatalf("Validate(%q, %q) = %v, names valid = %v", org, space, err, ok)
		}
		if err == nil && (strings.ContainsAny(org+space, "/.\\ \x00") || len(org) > MaxNameLength) {
			t.Fatalf("Validate accepted %q / %q", org, space)
		}
		if r, err := ParseRole(org); err == nil && string(r) != org {
			t.Fatalf("ParseRole(%q) = %q", org, r)
		}
	})
}
