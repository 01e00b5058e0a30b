// Package docker is the driver that runs each instance as a container of the
// node's Docker engine: the container isolation. It is the only package that
// imports the Docker SDK (github.com/docker/docker/client, pinned at v28.5.x,
// which negotiates the engine's API version down to 1.41 for Docker 20.10).
//
// A container per instance:
//
//   - from the spec's image — a droplet image (DropletImage: the stack plus
//     the droplet, see package dropletimage) or an image deploy's image
//     (AppImage: one the engine has, or a `docker save` tarball loaded once
//     per digest) — or from the stack image with the executor's unpacked
//     droplet dir and the spec's writable dirs bind-mounted at their own
//     paths;
//   - run as /bin/sh -c <command> (an image deploy without a command: the
//     image's own entrypoint and command) under docker-init (which reaps
//     orphans and forwards signals), as the image's user unless that is root
//     (then ImageUID), or in bind mode as uid = gid = UIDBase + hash(id),
//     with a read-only root file system, a private tmpfs /tmp, the app dir
//     writable (the bind mount, or an anonymous volume filled from the image
//     and removed with the container), every capability dropped and
//     no-new-privileges;
//   - limited to Spec.MemoryMB without swap (an OOM kill is reported as
//     ExitResult.OOMKilled, from the engine), CPU shares equal to the memory
//     in MB but at least 1024 (a host process's default weight), and
//     Config.PidsMax tasks;
//   - in a bridge network per space and node (labelled, inter-container
//     traffic off: instances reach each other through the routers), listening
//     on Config.ListenPort ($PORT), published on the advertise address at a
//     port the engine picks: the handle's Endpoint. Health checks go to the
//     container's own address in its network (Endpoint.CheckHost), because
//     the engine's proxy accepts connections on a published port before the
//     app listens.
//
// Output is read from the engine's log stream (json-file, bounded) into the
// spec's writers; exit codes and OOM kills come from the engine. Everything
// the driver creates carries the labels io.strata.managed=true and
// io.strata.node=<node id>; containers also io.strata.instance and
// io.strata.space. Recover re-attaches to the same container (by the id in
// the handle, checked against its labels); Destroy removes the container,
// its volumes and then networks no container uses; Sweep removes this node's
// containers the executor does not know (docs/reliability.md rule 4).
package docker
