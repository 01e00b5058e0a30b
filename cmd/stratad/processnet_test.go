package main

import (
	"flag"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/strata-paas/strata/deploy/driver/process"
)

// TestProcessNet: the process driver's network flags reach its config, the
// microcloud's router listeners are added, and bad values are refused.
func TestProcessNet(t *testing.T) {
	router := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	for _, tc := range []struct {
		args      []string
		routers   []net.Addr
		wantRange string
		wantPorts []string
		wantHost  bool
		wantErr   string
	}{
		{args: nil, wantRange: "10.213.0.0/16"},
		{args: []string{"--process-instance-range", "10.99.0.0/20", "--process-host-network"}, wantRange: "10.99.0.0/20", wantHost: true},
		{args: []string{"--process-router-addrs", "127.0.0.1:80, :443"}, routers: []net.Addr{router},
			wantRange: "10.213.0.0/16", wantPorts: []string{"127.0.0.1:80", "0.0.0.0:443", "127.0.0.1:8080"}},
		{args: nil, routers: []net.Addr{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9}}, wantRange: "10.213.0.0/16", wantPorts: []string{"0.0.0.0:9"}},
		{args: []string{"--process-instance-range", "fd00::/64"}, wantErr: "--process-instance-range"},
		{args: []string{"--process-instance-range", "nonsense"}, wantErr: "--process-instance-range"},
		{args: []string{"--process-router-addrs", "localhost:80"}, wantErr: "--process-router-addrs"},
		{args: []string{"--process-router-addrs", "127.0.0.1:0"}, wantErr: "--process-router-addrs"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			p := addProcessNet(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var cfg process.Config
			err := p.apply(&cfg, tc.routers...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("apply = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ports []string
			for _, hp := range cfg.HostPorts {
				ports = append(ports, hp.String())
			}
			if cfg.InstanceRange != netip.MustParsePrefix(tc.wantRange) || cfg.HostNetwork != tc.wantHost || !slices.Equal(ports, tc.wantPorts) {
				t.Fatalf("config: range %s, host network %v, host ports %v; want %s, %v, %v",
					cfg.InstanceRange, cfg.HostNetwork, ports, tc.wantRange, tc.wantHost, tc.wantPorts)
			}
		})
	}
}
