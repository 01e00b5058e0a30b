package netns_test

import (
	"context"
	"net/netip"
	"slices"
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

func TestNameservers(t *testing.T) {
	conf := "# generated\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.255.255.53\nsearch example.com\nnameserver\nnameserver 8.8.8.8 # x\noptions edns0\n"
	got := netns.Nameservers(conf)
	want := []netip.Addr{netip.MustParseAddr("10.255.255.53"), netip.MustParseAddr("8.8.8.8")}
	if !slices.Equal(got, want) {
		t.Fatalf("Nameservers = %v, want %v (IPv4, not loopback, once each)", got, want)
	}
}

func FuzzNameservers(f *testing.F) {
	f.Add("nameserver 10.0.0.1\nnameserver 127.0.0.53\n")
	f.Add("nameserver\tfe80::1%eth0\n")
	f.Fuzz(func(t *testing.T, conf string) {
		for _, a := range netns.Nameservers(conf) {
			if !a.Is4() || a.IsLoopback() {
				t.Fatalf("Nameservers(%q) returned %s", conf, a)
			}
		}
	})
}

// TestFixedRules: a nameserver's port 53 is accepted before the private
// ranges are refused; nothing else of the instance's is accepted before the
// refusals of instance-to-instance traffic.
func TestFixedRules(t *testing.T) {
	rules := strings.Split(netns.FixedRules([]netip.Addr{netip.MustParseAddr("10.255.255.53")}), "\n")
	idx := func(sub string) int {
		for i, r := range rules {
			if strings.Contains(r, sub) {
				return i
			}
		}
		t.Fatalf("no rule has %q:\n%s", sub, strings.Join(rules, "\n"))
		return -1
	}
	dns := idx("-A STRATA-INST-FWD -i stv+ -d 10.255.255.53 -p udp --dport 53 -j ACCEPT")
	private := idx("-d 10.0.0.0/8")
	peer := idx("-i stv+ -o stv+")
	dnat := idx("--ctstate DNAT")
	last := idx("-A STRATA-INST-FWD -i stv+ -j ACCEPT")
	if !(peer < dnat && dnat < dns && dns < private && private < last) {
		t.Fatalf("rule order: instance-to-instance %d, published %d, dns %d, private ranges %d, the rest %d; want increasing", peer, dnat, dns, private, last)
	}
}
