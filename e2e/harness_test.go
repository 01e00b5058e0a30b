package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		if _, err := exec.LookPath("go"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: go toolchain not found:", err)
			return 1
		}
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/strata", "./cmd/stratad", "./cmd/strata-static")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building binaries failed:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// repoRoot is the module root (the parent of this package's directory).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// require skips the test when a needed program is missing, or fails it under
// CI / STRATA_REQUIRE where a missing dependency is an error.
func require(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" || os.Getenv("STRATA_REQUIRE") != "" {
				t.Fatalf("%s is required but not found: %v", p, err)
			}
			t.Skipf("%s not found: %v", p, err)
		}
	}
}

// proc is a running child process whose stdout is scanned for lines.
type proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	err   error
	// stderr is the process's log.
	stderr *lockedBuffer
}

// safeBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs binary bin with args and env; it is killed when the test ends.
func start(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errBuf := &lockedBuffer{}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), stderr: errBuf}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.terminate(15 * time.Second)
		if t.Failed() {
			t.Logf("---- %s stdout ----\n%s\n---- %s stderr ----\n%s", name, strings.Join(p.output(), "\n"), name, tail(errBuf.String(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// logged reports whether the process has written s to stderr (its log).
func (p *proc) logged(s string) bool { return strings.Contains(p.stderr.String(), s) }

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLine waits until a stdout line matches re and returns its submatches.
func (p *proc) waitLine(re string, timeout time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, l := range p.output() {
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		select {
		case <-p.done:
			for _, l := range p.output() {
				if m := rx.FindStringSubmatch(l); m != nil {
					return m
				}
			}
			p.t.Fatalf("%s exited (%v) before printing a line matching %q", p.name, p.err, re)
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s printed no line matching %q within %s", p.name, re, timeout)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM, want a clean exit", p.name, p.err)
		}
	case <-time.After(timeout):
		p.t.Errorf("%s did not exit within %s of SIGTERM", p.name, timeout)
		p.kill()
	}
}

// terminate asks the process to exit with SIGTERM (so an executor or
// microcloud stops its instances and leaves no orphans), then kills the
// whole process group if it is still there after timeout.
func (p *proc) terminate(timeout time.Duration) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
		}
	}
	p.kill()
}

// kill kills the whole process group.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// microcloud is a running `stratad microcloud`.
type microcloud struct {
	*proc
	data       string
	api        string
	routerAddr string
	tokenFile  string
}

// startMicrocloud starts a microcloud on free ports with data in dataDir.
func startMicrocloud(t testing.TB, dataDir string) *microcloud {
	t.Helper()
	p := start(t, "stratad microcloud", nil, "stratad", "microcloud",
		"--data", dataDir, "--api-addr", "127.0.0.1:0", "--router-addr", "127.0.0.1:0")
	api := p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
	router := p.waitLine(`apps:\s+http://<app>\.localhost:(\d+)`, 10*time.Second)[1]
	return &microcloud{proc: p, data: dataDir, api: api, routerAddr: "127.0.0.1:" + router,
		tokenFile: filepath.Join(dataDir, "admin.token")}
}

// cli runs a command line program (the strata CLI, git) in dir with env and
// returns its combined output and exit code.
type cli struct {
	t    testing.TB
	env  []string
	home string
}

func newCLI(t testing.TB) *cli {
	home := t.TempDir()
	return &cli{t: t, home: home, env: []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Strata Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Strata Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"STRATA_API=", "STRATA_TOKEN=",
	}}
}

func (c *cli) run(dir string, name string, args ...string) (string, int) {
	c.t.Helper()
	return c.runStdin("", dir, name, args...)
}

// runStdin is run with stdin (a password).
func (c *cli) runStdin(stdin, dir, name string, args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if name == "strata" {
		name = filepath.Join(binDir, "strata")
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("run %s %v: %v", name, args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// must runs a command and fails the test on a non-zero exit.
func (c *cli) must(dir string, name string, args ...string) string {
	c.t.Helper()
	out, code := c.run(dir, name, args...)
	if code != 0 {
		c.t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// copyDir copies the example app src into a new temp dir.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// gitRepo turns dir into a git repository with one commit.
func gitRepo(t testing.TB, c *cli, dir string) {
	t.Helper()
	c.must(dir, "git", "init", "-q", "-b", "main")
	c.must(dir, "git", "add", "-A")
	c.must(dir, "git", "commit", "-q", "-m", "initial")
}

// routerGet requests host/path through the router at addr (dialling
// 127.0.0.1 and setting Host: Go's resolver need not resolve *.localhost).
func routerGet(addr, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	// Longer than the router's hold bound (10 s): a request for a route
	// without instances is held, then answered 503 (docs/architecture.md).
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitBody polls host through the router until it answers 200 with a body
// containing want.
func waitBody(t testing.TB, addr, host, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		code, body, err := routerGet(addr, host, "/")
		if err == nil && code == 200 && strings.Contains(body, want) {
			return body
		}
		last = fmt.Sprintf("status %d, body %q, err %v", code, tail(body, 300), err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s via router %s: no 200 with %q within %s; last: %s", host, addr, want, timeout, last)
	return ""
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
