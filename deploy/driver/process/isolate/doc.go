// Package isolate confines one process-driver instance on Linux: new PID,
// mount, UTS and IPC namespaces (and a network namespace, which the caller
// connects: package netns), a cgroup with a memory (and pids) limit, an
// unprivileged user, a private /tmp and a read-only view of the host except
// the instance's own directories.
//
// The first process in the namespaces is this very binary re-executed with
// argv[0] set to Arg0 (as runc re-executes itself as "runc init"). A package
// init hook recognises that argv[0] and runs the init instead of the
// program's main, so every binary that links the process driver — stratad
// and test binaries alike — can act as the init without a subcommand. The
// init:
//
//  1. reads its InitConfig from a pipe, after the driver has placed it in the
//     instance's cgroup, so nothing it starts escapes the limits;
//  2. configures its network namespace when it has one (loopback up, the
//     veth end the driver moved in renamed eth0, its address, a default
//     route; one `ip -batch`), sets the hostname, makes every mount private
//     and read-only, mounts a fresh /proc and tmpfs on /tmp and /dev/shm,
//     and bind-mounts the
//     writable directories read-write (overmounting ancestors the instance
//     user cannot traverse with a read-only tmpfs that holds only the path);
//  3. starts the command as the instance user and reports "ok" (or the setup
//     error) on a status pipe;
//  4. reaps every process re-parented to it, forwards SIGTERM, SIGINT, SIGHUP,
//     SIGQUIT, SIGUSR1 and SIGUSR2 to all processes of the namespace, writes
//     the command's exit status to a result file and exits. When it exits the
//     kernel kills whatever is left in the PID namespace.
//
// Cgroups v1 (controllers mounted under /sys/fs/cgroup/<controller>) and v2
// (the unified hierarchy with the memory controller available) are both
// supported; DetectCgroups picks v2 when its memory controller is usable.
package isolate
