// Package process is the driver that runs instances as plain host processes.
//
// Each instance runs as /bin/sh -c <command> in its own process group
// (Setpgid), and every signal goes to the negative pgid, so the whole tree the
// command spawned dies with it; when the command itself exits, whatever it
// left behind in its group is killed too. Pdeathsig is not used: it fires on
// thread exit, not process exit (golang/go#27505).
//
// Output goes to append-only files under Config.StateDir/<id>/ that the child
// writes directly, and tailers copy them to the Spec writers. Because no pipe
// connects the instance to the executor, an instance survives an executor
// restart without SIGPIPE, and Recover resumes tailing from the end of the
// files. Files are cut back to empty once their content has been delivered
// and they exceed a few MiB.
//
// There is no namespace or cgroup isolation yet: the fingerprint reports
// api.IsolationProcessUnconfined and Spec.MemoryMB is not enforced.
package process
