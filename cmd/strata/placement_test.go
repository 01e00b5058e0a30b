package main

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/manifest"
)

func TestPlacementOf(t *testing.T) {
	tests := []struct {
		name    string
		in      *manifest.Placement
		want    string // policy String(); "" for nil
		wantErr string
	}{
		{"none", nil, "", ""},
		{"metal", &manifest.Placement{Substrate: "metal"}, "substrate=metal", ""},
		{"all", &manifest.Placement{Substrate: "vm", Isolation: "process", Labels: map[string]string{"zone": "a"}}, "substrate=vm isolation=process zone=a", ""},
		{"bad substrate", &manifest.Placement{Substrate: "mainframe"}, "", "line 3: placement: substrate"},
		{"bad label", &manifest.Placement{Labels: map[string]string{"a b": "c"}}, "", "label key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := placementOf(&manifest.App{Placement: tc.in, Line: 3})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || api.ErrorCode(err) != api.EInvalid {
					t.Fatalf("err = %v, want invalid containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if p != nil {
				got = p.String()
			}
			if got != tc.want {
				t.Fatalf("policy = %q, want %q", got, tc.want)
			}
		})
	}
}

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
