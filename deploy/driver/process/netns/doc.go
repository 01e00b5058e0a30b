// Package netns gives each isolated process-driver instance a network of its
// own on the node, and keeps it from the node's services and from the other
// instances (see docs/tenancy.md, "How tenants are kept apart").
//
// An instance's init is started in a new network namespace (package isolate,
// CLONE_NEWNET). Attach then makes a veth pair: the node's end "stv<N>" gets
// the first address of the N-th /30 of Config.Range (default 10.213.0.0/16),
// the other end moves into the instance's namespace, where the init names it
// eth0, gives it the second address, brings it and loopback up and routes
// everything through the node's end. The interface name is the allocation:
// the kernel refuses a second link of the same name, so executors sharing a
// node never hand out the same /30, and when the instance's last process
// exits the kernel destroys its namespace and the pair with it, which gives
// the /30 back. The range itself is routed "unreachable" on the node (each
// live link's /30 is more specific), so a gone instance's address is never
// sent out the default route, where something else might answer.
//
// The node's firewall (iptables; whichever backend the host's iptables
// command uses, the one Docker uses too) holds Strata's own chains, created
// idempotently by New and hooked first into INPUT, FORWARD and nat
// POSTROUTING/PREROUTING/OUTPUT:
//
//   - STRATA-INST-IN: what an instance sends to the node itself (any of its
//     addresses, 0.0.0.0 listeners included) is rejected, except replies on
//     connections the node opened (health checks, the router) and the
//     ports Attach opened for that one instance (Config.HostPorts: the
//     router's), listed per instance in STRATA-INST-PORTS;
//   - STRATA-INST-FWD: an instance cannot reach another instance, nothing
//     outside the node can open a connection to an instance but through
//     its published port (STRATA-INST-PUB), and an
//     instance cannot reach private, link-local or shared address ranges
//     (the node's LAN, other nodes, the cloud metadata service, Docker's
//     bridges) — as Cloud Foundry's default "public_networks" security
//     group — but port 53 of the node's nameservers (/etc/resolv.conf, as
//     CF's "dns" group); the public internet is reached through
//     masquerading (STRATA-INST-NAT);
//   - STRATA-INST-DNAT: a HostPorts port at the instance's gateway address
//     goes to the node's listener (loopback when it listens there);
//   - STRATA-INST-PUB (Config.Publish): a published port of the node, on any
//     of its addresses, goes to its instance, for routers on other machines;
//     from another instance it is still refused (STRATA-INST-FWD).
//
// The commands are the host's `ip` (iproute2) and `iptables`; New fails with
// a clear error when either is missing or the caller is not root.
package netns
