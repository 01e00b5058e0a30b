package netns_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/strata-paas/strata/deploy/driver/process/netns"
)

func TestNewBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  netns.Config
		want string
	}{
		{"ipv6 range", netns.Config{Range: netip.MustParsePrefix("fd00::/64")}, "want an IPv4 range"},
		{"range too small", netns.Config{Range: netip.MustParsePrefix("10.1.2.3/31")}, "want an IPv4 range"},
		{"range too large", netns.Config{Range: netip.MustParsePrefix("10.0.0.0/7")}, "want an IPv4 range"},
		{"host port without port", netns.Config{HostPorts: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}, "want an IPv4 address and a port"},
		{"ipv6 host port", netns.Config{HostPorts: []netip.AddrPort{netip.MustParseAddrPort("[::1]:80")}}, "want an IPv4 address and a port"},
		{"missing commands", netns.Config{SearchPath: t.TempDir()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := netns.New(context.Background(), tc.cfg)
			if err == nil {
				t.Fatalf("New(%+v) = nil error", tc.cfg)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v, want it to say %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestRuleInterface(t *testing.T) {
	for _, tc := range []struct{ rule, want string }{
		{"-d 127.0.0.1/32 -i stv12 -p tcp -m tcp --dport 8080 -j ACCEPT", "stv12"},
		{"-s 10.213.0.0/16 ! -o stv+ -j MASQUERADE", ""},
		{"-i", ""},
		{"-p tcp -m tcp --dport 40000 -m comment --comment strata:stv7 -j DNAT --to-destination 10.213.0.30:8080", "stv7"},
		{`-m comment --comment "strata:stv8"`, "stv8"},
		{"-m comment --comment other", ""},
	} {
		if got := netns.RuleInterface(strings.Fields(tc.rule)); got != tc.want {
			t.Errorf("RuleInterface(%q) = %q, want %q", tc.rule, got, tc.want)
		}
	}
}
