// Package microvm is the driver that runs each instance in a QEMU microvm of
// its own: the microvm isolation (docs/microvm.md).
//
// One QEMU process per instance (machine type microvm, no firmware, no
// PCI), with:
//
//   - the node's kernel (default the Debian cloud kernel) and an initramfs
//     holding the guest init (cmd/strata-guest-init, package guest), a
//     static busybox as /bin/sh and its tools, the virtio modules of the
//     kernel (it builds them as modules) and the instance's config (command,
//     environment, dirs) as a second concatenated archive;
//   - the disk: for a droplet (the driver is a DropletImager), a qcow2
//     copy-on-write overlay of the droplet's image — the stack's root file
//     system (the stack image, read with docker save once per image id)
//     plus the droplet under DropletRoot, an ext4 image made with
//     mkfs.ext4 -d and owned with debugfs (no mounts, no root), once per
//     droplet digest — which the init mounts and chroots the command into;
//     without the stack, the droplet alone on the busybox root. For a spec
//     with a dir and no image, an ext4 image of the dir, mounted at the
//     dir's own host path;
//   - user-mode networking (restrict=on: the guest reaches nothing outside;
//     only the host's forward reaches it) with the guest at 10.0.2.15 and a
//     forward from a free port of the advertise address to the guest's
//     $PORT: the handle's Endpoint;
//   - two virtio-serial ports: the guest's output (frames: stdout and stderr
//     chunks, started, exit code, init error) into a file the driver follows
//     into the spec's writers, and a control socket on which Stop asks the
//     init to send SIGTERM to the command's process group;
//   - the serial console (kernel and init messages) in a file, whose last
//     lines go into the error of a boot that fails;
//   - memory = the spec's memory (at least MinMemoryMB), one vCPU.
//
// The init runs the command as an unprivileged user (GuestUID) and powers
// the VM off when it exits, after reporting its exit code: Wait returns it.
// Acceleration is measured, not assumed: New boots a probe guest under KVM
// (when /dev/kvm opens) and else under TCG, bounded by timeouts and retried,
// and caches the result per kernel, QEMU and initramfs. A boot that does
// not reach the command within BootTimeout is killed and retried.
// Recover re-attaches to a QEMU by pid and start time (and its command line
// naming the instance's disk); Sweep kills the QEMU of instance dirs the
// executor does not know and removes them; Usage reports QEMU's CPU time
// and resident memory.
package microvm
