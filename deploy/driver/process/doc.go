// Package process is the driver that runs instances as host processes.
//
// Each instance runs /bin/sh -c <command>. Output goes to append-only files
// under Config.StateDir/<id>/ that the instance writes directly, and tailers
// copy them to the Spec writers. Because no pipe connects the instance to the
// executor, an instance survives an executor restart without SIGPIPE, and
// Recover resumes tailing from the end of the files. Files are cut back to
// empty once their content has been delivered and they exceed a few MiB.
// Pdeathsig is not used: it fires on thread exit, not process exit
// (golang/go#27505).
//
// # Isolated instances (root on Linux)
//
// When the executor runs as root on Linux, a cgroup memory controller is
// mounted (cgroup v2, or v1 under /sys/fs/cgroup/memory) and a probe instance
// starts, every instance is confined (package isolate does the work):
//
//   - its own PID, mount, UTS (hostname = instance id), IPC and network
//     namespaces. Package netns gives the network namespace a veth pair to
//     the node with a /30 of Config.InstanceRange (default 10.213.0.0/16):
//     the app listens on $PORT = ListenPort (8080) there, the handle's
//     endpoint is the instance's address (or, when Config.AdvertiseHost is
//     not loopback, AdvertiseHost and the node port the instance is
//     published on, for routers on other machines), and the node's
//     firewall keeps the instance from the node's services and from other
//     instances, except Config.HostPorts (the router's) at its gateway
//     address. When the node
//     cannot do that (no ip or iptables command) New refuses, unless
//     Config.HostNetwork lets isolated instances share the node's network;
//     the fingerprint then says process-unconfined;
//   - PID 1 is this binary re-executed as "strata-init": it starts the
//     command, reaps orphans, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/
//     SIGUSR2 to every process of the namespace and records the command's exit
//     status; when it exits the kernel kills the rest of the namespace, so
//     nothing the app spawned (even setsid daemons) outlives it;
//   - a cgroup <hierarchy>/strata/<hash of StateDir>/<id> with
//     memory.limit_in_bytes (v1) or memory.max (v2) = Spec.MemoryMB, no extra
//     swap, and pids.max = Config.PidsMax; it is emptied with SIGKILL and
//     removed when the instance ends, and OOM kills in it are reported as
//     ExitResult.OOMKilled. Empty cgroups left by instances that ended while
//     no driver watched are removed when the next driver on the StateDir
//     starts;
//   - an unprivileged user: uid = gid = Config.UIDBase + hash(id) mod 10^6,
//     with no supplementary groups; Spec.Dir and Spec.Writable are chowned to
//     it and made private (0700);
//   - every mount read-only except Spec.Dir and Spec.Writable (bind-mounted
//     read-write), a fresh /proc, and private tmpfs on /tmp and /dev/shm
//     (sized like the memory limit, and counted against it). Ancestors of the
//     writable dirs that other users cannot search are covered by a read-only
//     tmpfs holding only the path to those dirs, which also hides the other
//     instances next to them.
//
// The fingerprint then reports api.IsolationProcess. Stop sends SIGTERM to
// the init (which forwards it), then SIGKILL to the init after the grace.
// The handle records the init's host PID, the cgroup paths and the
// instance's link, so Recover after an executor restart finds them (the
// instance keeps its address); the init keeps writing the exit status
// to the state dir, so a recovered isolated instance still reports how it
// ended.
//
// # Unconfined instances
//
// Otherwise (not root, not Linux, no memory controller, or the kernel refuses
// namespaces — the reason is logged as "process.unconfined") each instance is a
// plain process group of the executor's user (Setpgid): every signal goes to
// the negative pgid, so the tree the command spawned dies with it, and when the
// command itself exits whatever it left behind in its group is killed too.
// There is no memory limit, no private /tmp and no read-only file system, and
// the fingerprint reports api.IsolationProcessUnconfined so placement policies
// can avoid such nodes. Config.Confine forces either mode.
package process
