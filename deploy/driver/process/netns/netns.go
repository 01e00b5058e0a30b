package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRange is the address range instances get their /30s from when
// Config.Range is not set.
var DefaultRange = netip.MustParsePrefix("10.213.0.0/16")

// Chain names; every rule Strata adds is in one of them (the hooks that jump
// to them aside).
const (
	ChainIn    = "STRATA-INST-IN"    // filter: instance → the node
	ChainPorts = "STRATA-INST-PORTS" // filter: the node's ports each instance may reach
	ChainFwd   = "STRATA-INST-FWD"   // filter: instance ↔ anything else
	ChainNAT   = "STRATA-INST-NAT"   // nat POSTROUTING: masquerade to the outside
	ChainDNAT  = "STRATA-INST-DNAT"  // nat PREROUTING: gateway:port → the node's listener
	ChainPub   = "STRATA-INST-PUB"   // nat PREROUTING and OUTPUT: a published port of the node → an instance
)

// HostPrefix and PeerPrefix start the names of the node's and the instance's
// ends of a veth pair ("stv12", "stp12").
const (
	HostPrefix = "stv"
	PeerPrefix = "stp"
)

// blocked are the destinations outside the node an instance may not reach:
// private, shared, link-local (cloud metadata) and multicast ranges.
var blocked = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"}

// Config configures a Net.
type Config struct {
	// Range is the IPv4 range instances' /30s come from. Default
	// DefaultRange. Every executor of a node must use the same one.
	Range netip.Prefix
	// HostPorts are the node's listeners instances may connect to (the
	// router's), at their gateway address and that port. An unspecified
	// address (0.0.0.0) means the listener is on every address; the
	// instance's connection is then sent to loopback.
	HostPorts []netip.AddrPort
	// Publish makes Attach publish each instance's port on a free port of
	// the node (any of its addresses), for routers on other machines.
	Publish bool
	// SearchPath lists the directories (colon-separated) the ip and
	// iptables commands are looked for in; "" means $PATH, then /usr/sbin,
	// /sbin and /usr/local/sbin (a daemon's PATH may lack them).
	SearchPath string
	Logger     *slog.Logger
}

// Net makes instances' networks. It is safe for concurrent use, and several
// Nets (in one process or several) may share a node.
type Net struct {
	cfg                Config
	log                *slog.Logger
	ip, ipt, iptRestor string
	slots              int

	mu   sync.Mutex
	next int
}

// Link is one instance's veth pair; it marshals to JSON so a driver can
// persist it and re-adopt it after a restart.
type Link struct {
	Index   int        `json:"index"`
	HostIf  string     `json:"host_if"`
	Gateway netip.Addr `json:"gateway"` // the node's end
	Addr    netip.Addr `json:"addr"`    // the instance's end
	Bits    int        `json:"bits"`
	// Port is the instance's port and Published the node's port that
	// forwards to it (Config.Publish); both 0 when nothing is published.
	Port      int `json:"port,omitempty"`
	Published int `json:"published,omitempty"`
}

// Inside is what the instance's init configures in its namespace.
type Inside struct {
	Link    string // the end moved into the namespace, to be renamed eth0
	Addr    string // its address, CIDR
	Gateway string // the default route
}

// New checks that this host can give instances networks (root, the ip and
// iptables commands, IPv4 forwarding) and installs Strata's chains, which is
// idempotent. Per-instance rules left by instances whose links are gone are
// removed.
func New(ctx context.Context, cfg Config) (*Net, error) {
	if !cfg.Range.IsValid() {
		cfg.Range = DefaultRange
	}
	cfg.Range = cfg.Range.Masked()
	if !cfg.Range.Addr().Is4() || cfg.Range.Bits() > 30 || cfg.Range.Bits() < 8 {
		return nil, fmt.Errorf("instance address range %s: want an IPv4 range between /8 and /30", cfg.Range)
	}
	for _, hp := range cfg.HostPorts {
		if !hp.IsValid() || hp.Port() == 0 || !hp.Addr().Is4() {
			return nil, fmt.Errorf("host port %s instances may reach: want an IPv4 address and a port", hp)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Net{cfg: cfg, log: cfg.Logger, slots: 1 << (30 - cfg.Range.Bits())}
	n.next = rand.IntN(n.slots) // executors sharing a node do not all probe the same slots first
	if os.Geteuid() != 0 {
		return nil, errors.New("making instance networks needs root")
	}
	var err error
	for _, c := range []struct {
		path *string
		name string
	}{{&n.ip, "ip"}, {&n.ipt, "iptables"}, {&n.iptRestor, "iptables-restore"}} {
		if *c.path, err = lookPath(cfg.SearchPath, c.name); err != nil {
			return nil, fmt.Errorf("the %s command is missing — install iproute2 and iptables", c.name)
		}
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(b)) != "1" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
			return nil, fmt.Errorf("enable IPv4 forwarding (instances reach the outside through the node): %w", err)
		}
		n.log.Info("netns.ip_forward_enabled")
	}
	// Once an instance's link is gone its address must not be routed
	// elsewhere (the default route): a check of a stopped instance would
	// reach whatever answers there. Each live link's /30 is more specific.
	if err := n.run(ctx, "", n.ip, "route", "replace", "unreachable", cfg.Range.String()); err != nil {
		return nil, fmt.Errorf("route the instance range nowhere but to its links: %w", err)
	}
	if err := n.installChains(ctx); err != nil {
		return nil, err
	}
	n.sweep(ctx)
	return n, nil
}

// lookPath finds a command in the directories of search (see
// Config.SearchPath).
func lookPath(search, name string) (string, error) {
	if search == "" {
		search = os.Getenv("PATH") + ":/usr/sbin:/sbin:/usr/local/sbin"
	}
	for _, d := range filepath.SplitList(search) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fs.ErrNotExist
}

// IPTool is the path of ip(8), for the init to configure its namespace.
func (n *Net) IPTool() string { return n.ip }

// Range is the range instances' addresses come from.
func (n *Net) Range() netip.Prefix { return n.cfg.Range }

func (n *Net) run(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (n *Net) iptables(ctx context.Context, args ...string) error {
	return n.run(ctx, "", n.ipt, append([]string{"-w", "10"}, args...)...)
}

// ensureRule inserts (first) or appends rule to table/chain unless it is
// there.
func (n *Net) ensureRule(ctx context.Context, table, chain string, first bool, rule ...string) error {
	if n.iptables(ctx, append([]string{"-t", table, "-C", chain}, rule...)...) == nil {
		return nil
	}
	op := []string{"-t", table, "-A", chain}
	if first {
		op = []string{"-t", table, "-I", chain, "1"}
	}
	return n.iptables(ctx, append(op, rule...)...)
}

func (n *Net) ensureChain(ctx context.Context, table, chain string) error {
	if n.iptables(ctx, "-t", table, "-S", chain) == nil {
		return nil
	}
	if err := n.iptables(ctx, "-t", table, "-N", chain); err != nil && n.iptables(ctx, "-t", table, "-S", chain) != nil {
		return err
	}
	return nil
}

// installChains creates Strata's chains, fills the fixed ones in one
// transaction (so no packet sees them half-filled) and hooks them in.
func (n *Net) installChains(ctx context.Context) error {
	for _, c := range []struct{ table, chain string }{
		{"filter", ChainIn}, {"filter", ChainPorts}, {"filter", ChainFwd}, {"nat", ChainNAT}, {"nat", ChainDNAT}, {"nat", ChainPub},
	} {
		if err := n.ensureChain(ctx, c.table, c.chain); err != nil {
			return fmt.Errorf("create firewall chain %s: %w", c.chain, err)
		}
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if err := n.run(ctx, FixedRules(Nameservers(string(resolv))), n.iptRestor, "-w", "10", "--noflush"); err != nil {
		return fmt.Errorf("fill firewall chains: %w", err)
	}
	inst := HostPrefix + "+"
	for _, h := range []struct {
		table, chain string
		rule         []string
	}{
		{"filter", "INPUT", []string{"-i", inst, "-j", ChainIn}},
		{"filter", "FORWARD", []string{"-i", inst, "-j", ChainFwd}},
		{"filter", "FORWARD", []string{"-o", inst, "-j", ChainFwd}},
		{"nat", "POSTROUTING", []string{"-j", ChainNAT}},
		{"nat", "PREROUTING", []string{"-i", inst, "-j", ChainDNAT}},
		{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainPub}},
		{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainPub}},
		{"nat", ChainNAT, []string{"-s", n.cfg.Range.String(), "!", "-o", inst, "-j", "MASQUERADE"}},
	} {
		if err := n.ensureRule(ctx, h.table, h.chain, h.chain != ChainNAT, h.rule...); err != nil {
			return fmt.Errorf("hook firewall chain: %w", err)
		}
	}
	return nil
}

// FixedRules is the iptables-restore input that fills Strata's fixed
// chains (declaring a chain in it empties it first, in the same
// transaction). Instances may reach nameservers' port 53 (the node's
// resolvers, else in a blocked range), as Cloud Foundry's default "dns"
// security group allows.
func FixedRules(nameservers []netip.Addr) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	inst := HostPrefix + "+"
	w("*filter")
	w(":%s - [0:0]", ChainIn)
	w(":%s - [0:0]", ChainFwd)
	w("-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", ChainIn)
	for _, ns := range nameservers {
		for _, proto := range []string{"udp", "tcp"} {
			w("-A %s -d %s -p %s --dport 53 -j ACCEPT", ChainIn, ns, proto)
		}
	}
	w("-A %s -j %s", ChainIn, ChainPorts)
	w("-A %s -p tcp -j REJECT --reject-with tcp-reset", ChainIn)
	w("-A %s -j REJECT --reject-with icmp-port-unreachable", ChainIn)
	w("-A %s -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", ChainFwd)
	w("-A %s -i %s -o %s -p tcp -j REJECT --reject-with tcp-reset", ChainFwd, inst, inst)
	w("-A %s -o %s -m conntrack --ctstate DNAT -j ACCEPT", ChainFwd, inst) // a published port (ChainPub)
	w("-A %s -o %s -j REJECT --reject-with icmp-port-unreachable", ChainFwd, inst)
	for _, ns := range nameservers {
		for _, proto := range []string{"udp", "tcp"} {
			w("-A %s -i %s -d %s -p %s --dport 53 -j ACCEPT", ChainFwd, inst, ns, proto)
		}
	}
	for _, p := range blocked {
		w("-A %s -i %s -d %s -p tcp -j REJECT --reject-with tcp-reset", ChainFwd, inst, p)
		w("-A %s -i %s -d %s -j REJECT --reject-with icmp-net-prohibited", ChainFwd, inst, p)
	}
	w("-A %s -i %s -j ACCEPT", ChainFwd, inst)
	w("COMMIT")
	return b.String()
}

// Nameservers are the IPv4 nameservers of resolv.conf content that an
// instance can reach (not loopback: that is the instance's own).
func Nameservers(resolvConf string) []netip.Addr {
	var out []netip.Addr
	for line := range strings.SplitSeq(resolvConf, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !a.Is4() || a.IsLoopback() || a.IsUnspecified() || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// slot returns link index i of the range.
func (n *Net) slot(i int) *Link {
	base := n.cfg.Range.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(i) * 4
	addr := func(off uint32) netip.Addr {
		x := v + off
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	return &Link{Index: i, HostIf: HostPrefix + strconv.Itoa(i), Gateway: addr(1), Addr: addr(2), Bits: 30}
}

func linkExists(name string) bool {
	_, err := os.Lstat("/sys/class/net/" + name)
	return err == nil
}

// Attach gives the network namespace of process pid (new, with nothing in
// it) a veth pair to the node and opens the HostPorts for it; with
// Config.Publish, the instance's port (when not 0) is published on a free
// port of the node. It returns the link and what the process must configure
// inside. On error nothing is left.
func (n *Net) Attach(ctx context.Context, pid, port int) (*Link, *Inside, error) {
	var l *Link
	for try := 0; try < n.slots && l == nil; try++ {
		n.mu.Lock()
		i := n.next
		n.next = (n.next + 1) % n.slots
		n.mu.Unlock()
		cand := n.slot(i)
		peer := PeerPrefix + strconv.Itoa(i)
		if linkExists(cand.HostIf) || linkExists(peer) {
			continue
		}
		err := n.run(ctx, "", n.ip, "link", "add", cand.HostIf, "type", "veth", "peer", "name", peer)
		if err != nil {
			if linkExists(cand.HostIf) || linkExists(peer) {
				continue // another executor took the slot first
			}
			return nil, nil, fmt.Errorf("create the instance's veth pair: %w", err)
		}
		l = cand
	}
	if l == nil {
		return nil, nil, fmt.Errorf("no free address for the instance: all %d /30s of %s are in use", n.slots, n.cfg.Range)
	}
	if n.cfg.Publish && port > 0 {
		pub, err := freePort()
		if err != nil {
			n.Release(context.Background(), l)
			return nil, nil, err
		}
		l.Port, l.Published = port, pub
	}
	peer := PeerPrefix + strconv.Itoa(l.Index)
	fail := func(err error) (*Link, *Inside, error) {
		n.Release(context.Background(), l)
		return nil, nil, err
	}
	batch := fmt.Sprintf("link set %s netns %d\naddr add %s/%d dev %s\nlink set %s up\n",
		peer, pid, l.Gateway, l.Bits, l.HostIf, l.HostIf)
	if err := n.run(ctx, batch, n.ip, "-batch", "-"); err != nil {
		return fail(fmt.Errorf("connect the instance's network: %w", err))
	}
	if err := n.open(ctx, l); err != nil {
		return fail(err)
	}
	return l, &Inside{Link: peer, Addr: fmt.Sprintf("%s/%d", l.Addr, l.Bits), Gateway: l.Gateway.String()}, nil
}

// freePort is a port of the node no socket uses now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return 0, fmt.Errorf("no free port on the node to publish the instance on: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// hostRules are link's per-instance rules: table, chain and rule.
func (n *Net) hostRules(l *Link) [][]string {
	var out [][]string
	if l.Published > 0 {
		// The comment names the link: the rule has no -i to own it by.
		out = append(out, []string{"nat", ChainPub, "-p", "tcp", "--dport", strconv.Itoa(l.Published),
			"-m", "comment", "--comment", commentPrefix + l.HostIf,
			"-j", "DNAT", "--to-destination", netip.AddrPortFrom(l.Addr, uint16(l.Port)).String()})
	}
	for _, hp := range n.cfg.HostPorts {
		dst := hp.Addr()
		if dst.IsUnspecified() {
			dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		port := strconv.Itoa(int(hp.Port()))
		out = append(out,
			[]string{"nat", ChainDNAT, "-i", l.HostIf, "-d", l.Gateway.String(), "-p", "tcp", "--dport", port, "-j", "DNAT", "--to-destination", netip.AddrPortFrom(dst, hp.Port()).String()},
			[]string{"filter", ChainPorts, "-i", l.HostIf, "-d", dst.String(), "-p", "tcp", "--dport", port, "-j", "ACCEPT"})
	}
	return out
}

// open adds link's per-instance rules, replacing any left by an earlier
// holder of the same interface name.
func (n *Net) open(ctx context.Context, l *Link) error {
	n.deleteRulesOf(ctx, l.HostIf)
	for _, hp := range n.cfg.HostPorts {
		if hp.Addr().IsUnspecified() || hp.Addr().IsLoopback() {
			// The node's loopback listener answers a connection that
			// came in on the instance's link.
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+l.HostIf+"/route_localnet", []byte("1"), 0); err != nil {
				return fmt.Errorf("let the instance reach the node's loopback port %s: %w", hp, err)
			}
			break
		}
	}
	for _, r := range n.hostRules(l) {
		if err := n.iptables(ctx, append([]string{"-t", r[0], "-A", r[1]}, r[2:]...)...); err != nil {
			return fmt.Errorf("open the node's port for the instance: %w", err)
		}
	}
	return nil
}

// Adopt re-attaches to the link of a running instance after a restart: it
// fails when the link is gone, and puts back any of its rules that are
// missing.
func (n *Net) Adopt(ctx context.Context, l *Link) error {
	if l == nil {
		return errors.New("no link to adopt")
	}
	want := n.slot(l.Index)
	want.Port, want.Published = l.Port, l.Published
	if *want != *l {
		return fmt.Errorf("link %+v is not one of range %s", l, n.cfg.Range)
	}
	if !linkExists(l.HostIf) {
		return fmt.Errorf("the instance's link %s is gone", l.HostIf)
	}
	for _, r := range n.hostRules(l) {
		if err := n.ensureRule(ctx, r[0], r[1], false, r[2:]...); err != nil {
			return err
		}
	}
	return nil
}

// Release removes link's rules and the pair if the kernel has not already
// (it does once the namespace's last process exits). It is idempotent.
func (n *Net) Release(ctx context.Context, l *Link) {
	if l == nil {
		return
	}
	n.deleteRulesOf(ctx, l.HostIf)
	if linkExists(l.HostIf) {
		if err := n.run(ctx, "", n.ip, "link", "del", l.HostIf); err != nil && linkExists(l.HostIf) {
			n.log.Warn("netns.release_failed", "link", l.HostIf, "err", err)
		}
	}
}

// rules lists the rules of table/chain as `iptables -S` prints them, without
// the leading "-A CHAIN".
func (n *Net) rules(ctx context.Context, table, chain string) [][]string {
	cmd := exec.CommandContext(ctx, n.ipt, "-w", "10", "-t", table, "-S", chain)
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var rules [][]string
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "-A" && f[1] == chain {
			for i := range f {
				f[i] = strings.Trim(f[i], `"`) // a comment is quoted; ours have no spaces
			}
			rules = append(rules, f[2:])
		}
	}
	return rules
}

// commentPrefix starts the comment naming the link a rule without -i is for.
const commentPrefix = "strata:"

// RuleInterface is the link a per-instance rule, as `iptables -S` prints it,
// is for: its -i interface, or the link its comment names.
func RuleInterface(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "-i" {
			return rule[i+1]
		}
		if rule[i] == "--comment" {
			if l, ok := strings.CutPrefix(strings.Trim(rule[i+1], `"`), commentPrefix); ok {
				return l
			}
		}
	}
	return ""
}

func (n *Net) deleteRulesOf(ctx context.Context, hostIf string) {
	n.deleteRules(ctx, func(ifc string) bool { return ifc == hostIf })
}

func (n *Net) deleteRules(ctx context.Context, match func(ifc string) bool) (removed int) {
	for _, c := range []struct{ table, chain string }{{"nat", ChainDNAT}, {"nat", ChainPub}, {"filter", ChainPorts}} {
		for _, r := range n.rules(ctx, c.table, c.chain) {
			if ifc := RuleInterface(r); ifc != "" && match(ifc) {
				if n.iptables(ctx, append([]string{"-t", c.table, "-D", c.chain}, r...)...) == nil {
					removed++
				}
			}
		}
	}
	return removed
}

// sweep removes the per-instance rules of links that are gone.
func (n *Net) sweep(ctx context.Context) {
	removed := n.deleteRules(ctx, func(ifc string) bool { return strings.HasPrefix(ifc, HostPrefix) && !linkExists(ifc) })
	if removed > 0 {
		n.log.Info("netns.stale_rules_removed", "rules", removed)
	}
}
