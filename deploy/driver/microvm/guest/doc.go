// Package guest is both sides of the conversation between the microvm
// driver and the init it boots: the init itself (Main, the /init of every
// instance VM, built as cmd/strata-guest-init) and the formats they share —
// the instance Config the init reads from the initramfs, the frames it
// writes on the output virtio-serial port (stdout and stderr chunks, started,
// exit, error) and the control lines it reads from the control port (TERM,
// KILL). See docs/microvm.md.
package guest
