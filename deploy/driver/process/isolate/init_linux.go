package isolate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// init turns this process into an instance's init when it was started as one.
func init() {
	if len(os.Args) > 0 && os.Args[0] == Arg0 && os.Getpid() == 1 {
		os.Exit(initMain())
	}
}

// Files are the init's standard output and error (inherited by the command)
// and the result file it writes the command's exit status to.
type Files struct {
	Stdout, Stderr, Result *os.File
}

// Start starts an init in new PID, mount, UTS and IPC namespaces, places it in
// cg before it does anything, sends it cfg and returns once the command is
// running. The init shares the host's network. The caller must Wait for the
// returned command. On error nothing is left running.
func Start(ctx context.Context, cfg *InitConfig, files Files, cg *Cgroup) (*exec.Cmd, error) {
	return StartNetwork(ctx, cfg, files, cg, nil)
}

// StartNetwork is Start with, when attach is set, a network namespace of its
// own for the init: attach, called once the init is in cg, connects it and
// its answer becomes cfg.Net. On error what attach made is the caller's to
// undo.
func StartNetwork(ctx context.Context, cfg *InitConfig, files Files, cg *Cgroup, attach Attach) (*exec.Cmd, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	stR, stW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, err
	}
	defer stR.Close()
	flags := uintptr(syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if attach != nil {
		flags |= syscall.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{Arg0}, Env: []string{}, Dir: "/",
		Stdout: files.Stdout, Stderr: files.Stderr,
		ExtraFiles: []*os.File{cfgR, stW, files.Result}, // fds 3, 4, 5
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Cloneflags: flags,
		},
	}
	err = cmd.Start()
	cfgR.Close()
	stW.Close()
	if err != nil {
		return nil, fmt.Errorf("start init in new namespaces: %w", err)
	}
	fail := func(err error) (*exec.Cmd, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if cg != nil {
		if err := cg.Add(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	if attach != nil {
		n, err := attach(ctx, cmd.Process.Pid)
		if err != nil {
			return fail(err)
		}
		c := *cfg
		c.Net = n
		cfg = &c
	}
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		return fail(fmt.Errorf("send init its config: %w", err))
	}
	cfgW.Close()
	status := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(stR, 4096))
		status <- b
	}()
	select {
	case b := <-status:
		if string(b) != "ok" {
			if len(b) == 0 {
				b = []byte("init exited during set-up")
			}
			return fail(errors.New(string(b)))
		}
		return cmd, nil
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// initMain is the init: fds 3 (config), 4 (status) and 5 (result) come from
// Start.
func initMain() int {
	cfgF, statusF, resultF := os.NewFile(3, "config"), os.NewFile(4, "status"), os.NewFile(5, "result")
	for fd := 3; fd <= 5; fd++ {
		syscall.CloseOnExec(fd)
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(statusF, format, args...)
		return 125
	}
	var cfg InitConfig
	if err := json.NewDecoder(cfgF).Decode(&cfg); err != nil {
		return fail("read init config: %v", err)
	}
	cfgF.Close()
	if len(cfg.Argv) == 0 || !filepath.IsAbs(cfg.Argv[0]) {
		return fail("init config has no absolute command")
	}
	if cfg.Net != nil {
		if err := setupNet(cfg.Net); err != nil {
			return fail("set up the instance's network: %v", err)
		}
	}
	if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fail("set hostname: %v", err)
	}
	if err := setupFS(&cfg); err != nil {
		return fail("set up the instance's file system: %v", err)
	}
	sigs := make(chan os.Signal, 16)
	forward := []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
	signal.Notify(sigs, append(forward, syscall.SIGCHLD)...)
	pid, err := syscall.ForkExec(cfg.Argv[0], cfg.Argv, &syscall.ProcAttr{
		Dir: cfg.Dir, Env: cfg.Env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{
			Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: []uint32{}}},
	})
	if err != nil {
		return fail("start %s: %v", cfg.Argv[0], err)
	}
	// The OOM killer must pick the command, not its init; the command
	// inherited the default score before this.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	fmt.Fprint(statusF, "ok")
	statusF.Close()

	stopping, appDone, code := false, false, 0
	for s := range sigs {
		if s != syscall.SIGCHLD {
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				stopping = true
			}
			_ = syscall.Kill(-1, s.(syscall.Signal)) // every process of the namespace but init
			continue
		}
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if errors.Is(err, syscall.ECHILD) && appDone {
				return code // nothing left in the namespace
			}
			if err != nil || wpid <= 0 {
				break
			}
			if wpid != pid {
				continue
			}
			appDone = true
			res := Result{ExitCode: ws.ExitStatus()}
			code = res.ExitCode
			if ws.Signaled() {
				res = Result{ExitCode: -1, Signal: ws.Signal().String()}
				code = 128 + int(ws.Signal())
			}
			b, _ := json.Marshal(res)
			_, _ = resultF.Write(b)
			resultF.Close()
			if !stopping {
				return code // the kernel kills the leftovers with us
			}
		}
	}
	return code
}

// setupNet configures the init's network namespace with one ip -batch.
func setupNet(n *Network) error {
	if !filepath.IsAbs(n.IPTool) {
		return fmt.Errorf("no absolute path to ip(8): %q", n.IPTool)
	}
	for _, f := range []string{n.Link, n.Addr, n.Gateway} {
		if f == "" || strings.ContainsAny(f, " \t\n") {
			return fmt.Errorf("bad network config %+v", *n)
		}
	}
	cmd := exec.Command(n.IPTool, "-batch", "-")
	cmd.Env = []string{}
	cmd.Stdin = strings.NewReader(fmt.Sprintf("link set lo up\nlink set %s name eth0\naddr add %s dev eth0\nlink set eth0 up\nroute add default via %s\n",
		n.Link, n.Addr, n.Gateway))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

const oPath = 0x200000 // O_PATH, missing from package syscall

// setupFS gives the instance its view of the file system; see the package
// documentation.
func setupFS(cfg *InitConfig) error {
	dirs := writableDirs(cfg.Dir, cfg.Writable)
	fds := make([]int, len(dirs))
	for i, d := range dirs {
		fd, err := syscall.Open(d, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", d, err)
		}
		fds[i] = fd
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var done []string
	for _, m := range ParseMountinfo(string(data)) {
		if m.Point == "/proc" || strings.HasPrefix(m.Point, "/proc/") || slices.Contains(done, m.Point) {
			continue
		}
		done = append(done, m.Point)
		if err := remount(m.Point, syscall.MS_RDONLY); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s read-only: %w", m.Point, err)
		}
	}
	const noDevSuid = syscall.MS_NOSUID | syscall.MS_NODEV
	if err := syscall.Mount("proc", "/proc", "proc", noDevSuid|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	tmpOpts := "mode=1777"
	if cfg.TmpMB > 0 {
		tmpOpts += fmt.Sprintf(",size=%dm", cfg.TmpMB)
	}
	for _, p := range []string{"/tmp", "/dev/shm"} {
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			continue
		}
		if err := syscall.Mount("tmpfs", p, "tmpfs", noDevSuid, tmpOpts); err != nil {
			return fmt.Errorf("mount a private %s: %w", p, err)
		}
	}
	var seal []string
	for i, d := range dirs {
		s, err := expose(d, fds[i])
		if err != nil {
			return fmt.Errorf("expose %s: %w", d, err)
		}
		seal = append(seal, s...)
		syscall.Close(fds[i])
	}
	for _, p := range seal {
		if err := remount(p, syscall.MS_RDONLY); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}

// writableDirs is dir and extra, cleaned, sorted, without those inside
// another.
func writableDirs(dir string, extra []string) []string {
	all := []string{filepath.Clean(dir)}
	for _, e := range extra {
		all = append(all, filepath.Clean(e))
	}
	slices.Sort(all)
	var out []string
	for _, d := range all {
		if len(out) > 0 {
			last := out[len(out)-1]
			if d == last || strings.HasPrefix(d, last+"/") || last == "/" {
				continue
			}
		}
		out = append(out, d)
	}
	return out
}

// expose makes dir (open as fd) reachable at its path and writable. An
// ancestor others cannot search gets a tmpfs over it holding only the path
// down to dir; expose returns those tmpfs mounts, to be made read-only.
func expose(dir string, fd int) (seal []string, err error) {
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		next := filepath.Join(cur, part)
		cur = next
		if next == dir {
			break
		}
		st, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, 0o755); err != nil {
				return seal, err
			}
		case err != nil:
			return seal, err
		case !st.IsDir():
			return seal, fmt.Errorf("%s is not a directory", next)
		case st.Mode().Perm()&0o001 == 0:
			if err := syscall.Mount("tmpfs", next, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=1m"); err != nil {
				return seal, fmt.Errorf("mount tmpfs on %s: %w", next, err)
			}
			seal = append(seal, next)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return seal, err
	}
	if err := syscall.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), dir, "", syscall.MS_BIND, ""); err != nil {
		return seal, fmt.Errorf("bind mount: %w", err)
	}
	return seal, remount(dir, 0)
}

// remount sets the per-mount flags of the mount at path to its current
// nosuid/nodev/noexec/atime flags plus extra (MS_RDONLY or 0 for writable).
func remount(path string, extra uintptr) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return err
	}
	flags := uintptr(syscall.MS_BIND|syscall.MS_REMOUNT) | extra
	for _, f := range []struct{ st, ms uintptr }{
		{0x2, syscall.MS_NOSUID}, {0x4, syscall.MS_NODEV}, {0x8, syscall.MS_NOEXEC},
		{0x400, syscall.MS_NOATIME}, {0x800, syscall.MS_NODIRATIME}, {0x1000, syscall.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	return syscall.Mount("", path, "", flags, "")
}

// PrepareDirs hands dirs (recursively) to uid:gid and makes their tops
// private to that user, so the instance can write them and other instances
// cannot read them.
func PrepareDirs(dirs []string, uid, gid int) error {
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("hand %s to the instance user: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}
