package main

import "testing"

func TestPlacementFlags(t *testing.T) {
	tests := []struct {
		name    string
		f       placementFlags
		want    string
		wantErr bool
	}{
		{"substrate and labels", placementFlags{substrate: "metal", labels: []string{"zone=a", "disk=ssd"}}, "substrate=metal disk=ssd zone=a", false},
		{"clear", placementFlags{clear: true}, "any", false},
		{"nothing", placementFlags{}, "", true},
		{"clear with a value", placementFlags{clear: true, substrate: "vm"}, "", true},
		{"bad label", placementFlags{labels: []string{"=x"}}, "", true},
		{"bad isolation", placementFlags{isolation: "jail"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.f.policy()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && p.String() != tc.want {
				t.Fatalf("policy = %q, want %q", p.String(), tc.want)
			}
		})
	}
}
