package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/strata-paas/strata/deploy/driver/process"
)

// processNet is how the process driver gives isolated instances networks of
// their own (docs/tenancy.md, "How tenants are kept apart").
type processNet struct {
	instanceRange, routerAddrs *string
	hostNetwork                *bool
}

func addProcessNet(fs *flag.FlagSet) *processNet {
	return &processNet{
		instanceRange: fs.String("process-instance-range", "10.213.0.0/16", "IPv4 range isolated process instances get their addresses from, a /30 each (every executor of a machine uses the same one)"),
		routerAddrs:   fs.String("process-router-addrs", "", "the router's listeners on this machine (host:port, comma-separated) isolated process instances may connect to, at their gateway address; nothing else on the node is reachable from an instance"),
		hostNetwork:   fs.Bool("process-host-network", false, "when this machine cannot give isolated process instances networks of their own (no ip or iptables command), run them on its network — they can then reach its services and each other — instead of refusing to start"),
	}
}

// apply sets cfg's network fields; routers are listeners of the node's own
// router (the microcloud's) added to --process-router-addrs.
func (p *processNet) apply(cfg *process.Config, routers ...net.Addr) error {
	r, err := netip.ParsePrefix(strings.TrimSpace(*p.instanceRange))
	if err != nil || !r.Addr().Is4() {
		return fmt.Errorf("bad --process-instance-range %q — give an IPv4 range such as 10.213.0.0/16", *p.instanceRange)
	}
	cfg.InstanceRange, cfg.HostNetwork = r, *p.hostNetwork
	for a := range strings.SplitSeq(*p.routerAddrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			if host, port, e := net.SplitHostPort(a); e == nil && host == "" {
				ap, err = netip.ParseAddrPort("0.0.0.0:" + port)
			}
		}
		if err != nil || ap.Port() == 0 {
			return fmt.Errorf("bad --process-router-addrs entry %q — give IPv4 host:port pairs such as 127.0.0.1:8080", a)
		}
		cfg.HostPorts = append(cfg.HostPorts, unspecified4(ap))
	}
	for _, a := range routers {
		if t, ok := a.(*net.TCPAddr); ok && t != nil {
			cfg.HostPorts = append(cfg.HostPorts, unspecified4(t.AddrPort()))
		}
	}
	return nil
}

// unspecified4 makes a listener on every address (0.0.0.0 or [::]) 0.0.0.0,
// and an IPv4-mapped address plain IPv4.
func unspecified4(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listenAddrs are listeners' addresses.
type listenAddrs []net.Addr

// routerAddrs are the microcloud router's listeners: its HTTP one, and the
// HTTPS one (listened on later) when its port is fixed.
func routerAddrs(rt *routerRole, tlsAddr string) listenAddrs {
	out := listenAddrs{rt.ln.Addr()}
	if ap, err := netip.ParseAddrPort(tlsAddr); err == nil && ap.Port() != 0 {
		out = append(out, net.TCPAddrFromAddrPort(ap))
	} else if host, port, err := net.SplitHostPort(tlsAddr); err == nil && host == "" && port != "0" {
		if ap, err := netip.ParseAddrPort("0.0.0.0:" + port); err == nil {
			out = append(out, net.TCPAddrFromAddrPort(ap))
		}
	}
	return out
}
