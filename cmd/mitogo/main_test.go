package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/test/sshtest"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// raceEnabled is set when the tests run with -race; the binary under test
// is then built with -race too.
var raceEnabled bool

// bin is the mitogo binary under test, built once.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mitogo-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "mitogo")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mitogo:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// Under -race a process sleeps a second at exit for late reports.
	os.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	// VerifyTestMain ends the process itself: the binary's directory is
	// removed in its Cleanup, as a deferred call would never run.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

type result struct {
	stdout, stderr string
	exit           int
	pid            int // the mitogo process's pid
}

// mitogo runs the binary with args and stdin, as a user would.
func mitogo(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("mitogo %q: %v", args, err)
	}
	res := result{stdout: stdout.String(), stderr: stderr.String(), exit: cmd.ProcessState.ExitCode(), pid: cmd.Process.Pid}
	t.Logf("mitogo %q: exit %d\nstdout: %s\nstderr: %s", args, res.exit, res.stdout, res.stderr)
	return res
}

func TestRunExitStatus(t *testing.T) {
	r := mitogo(t, "", "run", "--", "sh", "-c", "echo hi; echo err >&2; exit 7")
	if r.stdout != "hi\n" || r.stderr != "err\n" || r.exit != 7 {
		t.Errorf("got stdout %q, stderr %q, exit %d; want hi, err, 7", r.stdout, r.stderr, r.exit)
	}
	r = mitogo(t, "", "run", "sh", "-c", "kill -TERM $$")
	if r.exit != 128+15 || r.stderr != "" {
		t.Errorf("command killed by SIGTERM: exit %d, stderr %q; want 143", r.exit, r.stderr)
	}
}

func TestRunChain(t *testing.T) {
	// --binary is for hops that run stage 1: a local hop takes no
	// binaries, and the flag must not make it refuse.
	r := mitogo(t, "", "run", "--binary", "linux/arm64=/bin/sh", "-t", "local,local,local", "--", "sh", "-c", "echo $PPID")
	if r.exit != 0 {
		t.Fatalf("exit %d, stderr %q", r.exit, r.stderr)
	}
	ppid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil || ppid <= 1 || ppid == r.pid {
		t.Errorf("the command's parent is %q; mitogo's pid is %d: it should be the third context", r.stdout, r.pid)
	}
}

func TestRunStdin(t *testing.T) {
	r := mitogo(t, "abc\n", "run", "--", "cat")
	if r.stdout != "abc\n" || r.exit != 0 {
		t.Errorf("echo abc | mitogo run -- cat: stdout %q, exit %d", r.stdout, r.exit)
	}
	r = mitogo(t, "abc\n", "run", "-n", "--", "cat")
	if r.stdout != "" || r.exit != 0 {
		t.Errorf("mitogo run -n -- cat: stdout %q, exit %d; want nothing", r.stdout, r.exit)
	}
	// Many targets get stdin only with --stdin; a pipe given without it
	// is left unread with one warning, /dev/null without one.
	const warning = "mitogo: warning: stdin is not forwarded to 2 targets; --stdin gives all of it to each, -n none without this warning\n"
	r = mitogo(t, "abc\n", "run", "-t", "local", "-t", "local,local", "--", "cat")
	if r.stdout != "" || r.exit != 0 || r.stderr != warning {
		t.Errorf("echo abc | mitogo run -t local -t local,local -- cat: stdout %q, stderr %q, exit %d; want nothing and the warning", r.stdout, r.stderr, r.exit)
	}
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"--"}}, // stdin is /dev/null
		{"abc\n", []string{"-n", "--"}},
		{"abc\n", []string{"--stdin", "--"}},
	} {
		r = mitogo(t, c.stdin, append(append([]string{"run", "-t", "local", "-t", "local,local"}, c.args...), "cat")...)
		if r.exit != 0 || strings.Contains(r.stderr, "warning") {
			t.Errorf("stdin %q, %q: exit %d, stderr %q; want 0 and no warning", c.stdin, c.args, r.exit, r.stderr)
		}
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB through three hops
	r = mitogo(t, big, "run", "-t", "local,local,local", "--", "wc", "-c")
	if strings.TrimSpace(r.stdout) != strconv.Itoa(len(big)) || r.exit != 0 {
		t.Errorf("wc -c of 1 MiB: %q, exit %d", r.stdout, r.exit)
	}
}

func TestRunTimeout(t *testing.T) {
	r := mitogo(t, "", "run", "--timeout", "100ms", "--", "sleep", "60")
	if r.exit != 124 || !strings.HasPrefix(r.stderr, "mitogo: local: --timeout 100ms passed (while ") {
		t.Errorf("exit %d, stderr %q; want 124 (as timeout(1)) and --timeout 100ms passed", r.exit, r.stderr)
	}
}

// SIGINT stops the command and its process group, shuts the contexts down
// and exits 130; SIGTERM does the same and exits 143, as a shell gives.
func TestRunInterrupt(t *testing.T) {
	for _, c := range []struct {
		sig  os.Signal
		exit int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			cmd, line, stderr := startReading(t, "run", "--", "sh", "-c", "sleep 60 & echo $$ $!; wait")
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != c.exit {
				t.Errorf("exit %d (%v), stderr %q; want %d", code, err, stderr.String(), c.exit)
			}
			for _, f := range strings.Fields(line) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pids line %q", line)
				}
				waitGone(t, pid)
			}
		})
	}
}

// startReading starts the binary with args and returns once it printed
// its first line on stdout (a command's pids, say); the test ends it.
func startReading(t *testing.T, args ...string) (cmd *exec.Cmd, line string, stderr *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err = bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("reading the first line: %v (stderr %q)", err, stderr.String())
	}
	return cmd, line, stderr
}

// waitGone waits until process pid has exited: a pidfd becomes readable
// when its process exits.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20_000)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if n == 0 {
			t.Errorf("process %d still runs", pid)
		}
		return
	}
}

func TestCallFacts(t *testing.T) {
	r := mitogo(t, "", "call", "sys.facts")
	var facts map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &facts); err != nil || r.exit != 0 {
		t.Fatalf("exit %d, output %q: %v", r.exit, r.stdout, err)
	}
	host, _ := os.Hostname()
	if facts["hostname"] != host || facts["context"] != "local.1" || facts["pid"] == float64(r.pid) {
		t.Errorf("facts = %v; want hostname %q, context local.1, and a pid other than mitogo's %d", facts, host, r.pid)
	}
	if !strings.Contains(r.stdout, "\n  \"hostname\": ") {
		t.Errorf("output is not indented JSON: %q", r.stdout)
	}
}

func TestCallStat(t *testing.T) {
	fi, err := os.Stat("/etc/hostname")
	if err != nil {
		t.Skip(err)
	}
	r := mitogo(t, "", "call", "file.stat", `{"path":"/etc/hostname"}`)
	var st struct {
		Name  string `json:"name"`
		Size  int64  `json:"size"`
		Mode  string `json:"mode"`
		IsDir bool   `json:"is_dir"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.exit != 0 {
		t.Fatalf("exit %d, output %q: %v", r.exit, r.stdout, err)
	}
	if st.Name != "hostname" || st.Size != fi.Size() || st.Mode != fi.Mode().String() || st.IsDir {
		t.Errorf("stat = %+v; want %v %d %v", st, fi.Name(), fi.Size(), fi.Mode())
	}
}

// JSON arguments reach typed functions: strings for bytes, octal strings
// for modes, integers for integers; results print bytes as text.
func TestCallWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	r := mitogo(t, "", "call", "file.write", fmt.Sprintf(`{"path":%q,"data":"hello\n","mode":"0600","atomic":true}`, path))
	if r.exit != 0 || !strings.Contains(r.stdout, `"size": 6`) {
		t.Fatalf("write: exit %d, %q", r.exit, r.stdout)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("written file: %v, %v", fi, err)
	}
	r = mitogo(t, "", "call", "file.read", fmt.Sprintf(`{"path":%q,"max_bytes":3}`, path))
	var rd map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rd); err != nil || rd["data"] != "hel" || rd["truncated"] != true {
		t.Errorf("read: %v %v", rd, err)
	}
	// Arguments from stdin.
	r = mitogo(t, fmt.Sprintf(`{"path":%q}`, path), "call", "file.read", "-")
	if err := json.Unmarshal([]byte(r.stdout), &rd); err != nil || rd["data"] != "hello\n" {
		t.Errorf("read with arguments from stdin: %v %v", rd, err)
	}
}

func TestCallErrors(t *testing.T) {
	r := mitogo(t, "", "call", "nosuch.function")
	if r.exit != 127 || !strings.Contains(r.stderr, `"nosuch.function"`) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unknown function: exit %d, stderr %q; want 127 (as a missing command) and one line naming it", r.exit, r.stderr)
	}
	// The far side runs this program: a function it lacks is found here,
	// before connecting (a target that cannot be reached is never tried).
	r = mitogo(t, "", "call", "-t", "ssh://127.0.0.1:1", "-t", "local", "nosuch.function")
	if r.exit != 127 || !strings.Contains(r.stderr, `"nosuch.function"`) || !strings.Contains(r.stderr, "mitogo list") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unknown function, two targets: exit %d, stderr %q; want 127 and one line naming it and mitogo list", r.exit, r.stderr)
	}
	r = mitogo(t, "", "call", "file.read", `{"path":"/nonexistent/mitogo"}`)
	if r.exit != 1 || !strings.HasPrefix(r.stderr, "mitogo: ") || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("OS error: exit %d, stderr %q", r.exit, r.stderr)
	}
	// The far side's Go type of the error is for --json, not for people.
	if strings.Contains(r.stderr, "PathError") {
		t.Errorf("OS error: stderr %q names a Go type", r.stderr)
	}
	r = mitogo(t, "", "call", "--json", "file.read", `{"path":"/nonexistent/mitogo"}`)
	if r.exit != 1 || !strings.Contains(r.stdout, `no such file or directory (*fs.PathError)"`) {
		t.Errorf("OS error, --json: exit %d, stdout %q; want the error with its Go type", r.exit, r.stdout)
	}
	r = mitogo(t, "", "call", "file.read", `{"pth":"/etc/hostname"}`)
	if r.exit != 2 || !strings.Contains(r.stderr, `"pth"`) {
		t.Errorf("unknown argument: exit %d, stderr %q; want 2 naming it", r.exit, r.stderr)
	}
	// A field of the wrong type is found here, before connecting (a
	// target that cannot be reached is never tried), and named.
	r = mitogo(t, "", "call", "-t", "ssh://127.0.0.1:1", "file.stat", `{"path":5}`)
	if r.exit != 2 || !strings.Contains(r.stderr, `argument "path" takes a string, not 5`) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("argument of the wrong type: exit %d, stderr %q; want 2, one line naming it and the type it takes", r.exit, r.stderr)
	}
	r = mitogo(t, "", "call", "file.read", `{"path":`)
	if r.exit != 2 || !strings.Contains(r.stderr, "bad JSON") {
		t.Errorf("bad JSON: exit %d, stderr %q; want 2", r.exit, r.stderr)
	}
	r = mitogo(t, "", "call", "--timeout", "100ms", "proc.exec", `{"argv":["sleep","60"]}`)
	if r.exit != 124 || !strings.HasPrefix(r.stderr, "mitogo: local: --timeout 100ms passed (while ") {
		t.Errorf("timeout: exit %d, stderr %q; want 124 and --timeout 100ms passed", r.exit, r.stderr)
	}
}

func TestBadChain(t *testing.T) {
	for _, chain := range []string{"local,telnet://web1", "sudo:root", "local,,local", ""} {
		r := mitogo(t, "", "run", "-t", chain, "--", "true")
		if r.exit != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "-t") {
			t.Errorf("-t %q: exit %d, stderr %q; want 2 and one line", chain, r.exit, r.stderr)
		}
	}
	r := mitogo(t, "", "call", "-t", "local,telnet://web1", "sys.facts")
	if r.exit != 2 || !strings.Contains(r.stderr, `"telnet://web1"`) || !strings.Contains(r.stderr, "supported kinds are local") {
		t.Errorf("exit %d, stderr %q; want 2 naming the hop and the supported kinds", r.exit, r.stderr)
	}
	// A port that is out of range or not a number is said to be so.
	for _, c := range []struct{ chain, want string }{
		{"root@127.0.0.1:99999", `port 99999 in "127.0.0.1:99999" is out of range (1–65535)`},
		{"local,127.0.0.1:0", `port 0 in "127.0.0.1:0" is out of range (1–65535)`},
		{"ssh://root@127.0.0.1:99999", `port 99999 in "127.0.0.1:99999" is out of range (1–65535)`},
		{"root@127.0.0.1:ssh2", `port "ssh2" in "127.0.0.1:ssh2" is not a number`},
		{"local,sudo:root", `"sudo:root" is not a hop; did you mean sudo://root?`},
	} {
		r := mitogo(t, "", "call", "-t", c.chain, "sys.facts")
		if r.exit != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("-t %s: exit %d, stderr %q; want 2 and one line saying %s", c.chain, r.exit, r.stderr, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"run", "--help"}, {"call", "--help"}, {"list", "--help"}, {"functions", "-h"}, {"help", "call"}} {
		r := mitogo(t, "", args...)
		if r.exit != 0 || !strings.Contains(r.stdout, "Example") {
			t.Errorf("mitogo %q: exit %d, stdout %q; want 0 and an example", args, r.exit, r.stdout)
		}
	}
	r := mitogo(t, "")
	if r.exit != 2 || !strings.Contains(r.stderr, "Usage") {
		t.Errorf("mitogo alone: exit %d, stderr %q; want 2 and the usage", r.exit, r.stderr)
	}
	for _, args := range [][]string{{"frobnicate"}, {"run"}, {"run", "--bogus"}, {"call"}, {"list", "extra"}} {
		r := mitogo(t, "", args...)
		if r.exit != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "mitogo") {
			t.Errorf("mitogo %q: exit %d, stderr %q; want 2 and one line", args, r.exit, r.stderr)
		}
	}
}

func TestList(t *testing.T) {
	r := mitogo(t, "", "list")
	for _, name := range []string{"sys.facts", "file.read", "file.write", "file.stat", "proc.exec", "proc.run"} {
		if !strings.Contains(r.stdout, name+" ") {
			t.Errorf("list lacks %s: %q", name, r.stdout)
		}
	}
	if r.exit != 0 {
		t.Errorf("exit %d", r.exit)
	}
}

// A sudo hop, as a user would chain it: real sudo to the test user.
func TestSudoHop(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo and the user mitogo-test (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo and the user mitogo-test")
	}
	r := mitogo(t, "", "run", "-t", "local,sudo://mitogo-test", "--", "id", "-un")
	if r.exit != 0 || strings.TrimSpace(r.stdout) != "mitogo-test" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	r = mitogo(t, "", "run", "-t", "sudo://no-such-user-mitogo", "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "user unknown") {
		t.Fatalf("unknown user: exit %d, stderr %q", r.exit, r.stderr)
	}
}

// su with a password from the environment (answered on a pty), and its
// refusals, as a user would type them.
func TestSuHopWithPassword(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test2").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo, su and the users mitogo-test, mitogo-test2 (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo, su and the users mitogo-test, mitogo-test2")
	}
	chain := "sudo://mitogo-test2,su://mitogo-test"
	t.Setenv("MITOGO_TEST_PW", "mitogo-test-pw")
	r := mitogo(t, "", "run", "-t", chain, "--sudo-password-env", "MITOGO_TEST_PW", "--", "sh", "-c", "id -un; echo to-stderr >&2")
	if r.exit != 0 || strings.TrimSpace(r.stdout) != "mitogo-test" || !strings.Contains(r.stderr, "to-stderr") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	t.Setenv("MITOGO_TEST_PW", "not-the-password")
	r = mitogo(t, "", "run", "-t", chain, "--sudo-password-env", "MITOGO_TEST_PW", "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "su to mitogo-test: password incorrect") {
		t.Fatalf("wrong password: exit %d, stderr %q", r.exit, r.stderr)
	}
	r = mitogo(t, "", "run", "-t", chain, "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "su to mitogo-test: a password is required") {
		t.Fatalf("no password: exit %d, stderr %q", r.exit, r.stderr)
	}
}

// An ssh hop to a real sshd, then sudo beyond it, as a user would type it.
func TestSSHHop(t *testing.T) {
	s := sshtest.Start(t)
	target := "ssh://" + s.User + "@" + s.Addr
	flags := []string{"--identity", s.ClientKey, "--known-hosts", s.KnownHosts}
	r := mitogo(t, "", append(append([]string{"run", "-t", target}, flags...), "--", "sh", "-c", "echo $SSH_CONNECTION | cut -d' ' -f3")...)
	if r.exit != 0 || strings.TrimSpace(r.stdout) != "127.0.0.1" {
		t.Fatalf("ssh hop: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	if exec.Command("id", "mitogo-test").Run() == nil {
		r = mitogo(t, "", append(append([]string{"run", "-t", target + ",sudo://mitogo-test"}, flags...), "--", "id", "-un")...)
		if r.exit != 0 || strings.TrimSpace(r.stdout) != "mitogo-test" {
			t.Fatalf("ssh → sudo: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
		}
	}
	// Unknown host key: one clear line naming the fingerprint, exit 255
	// as ssh.
	r = mitogo(t, "", "run", "-t", target, "--identity", s.ClientKey, "--known-hosts", filepath.Join(t.TempDir(), "none"), "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "SHA256:") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("unknown host key: exit %d, stderr %q", r.exit, r.stderr)
	}
}

// rsync and scp into another account through the chain, as a user would
// type them; rsync's exit status comes back.
func TestRsyncAndScp(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo, rsync, scp and the user mitogo-test (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo and the user mitogo-test")
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644)
	os.Mkdir(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("beta\n"), 0o600)
	name := fmt.Sprintf("mitogo-cli-rsync-%d", os.Getpid())
	home := "/home/mitogo-test/" + name
	t.Cleanup(func() { os.RemoveAll(home); os.Remove(home + ".scp") })
	r := mitogo(t, "", "rsync", "-t", "sudo://mitogo-test", "--", "-a", src+"/", "target:"+name+"/")
	if r.exit != 0 {
		t.Fatalf("rsync: exit %d, stderr %q", r.exit, r.stderr)
	}
	for file, want := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"} {
		if got, err := os.ReadFile(filepath.Join(home, file)); err != nil || string(got) != want {
			t.Fatalf("%s: %q %v", file, got, err)
		}
	}
	r = mitogo(t, "", "rsync", "-t", "sudo://mitogo-test", "--", "-a", "target:/nonexistent-mitogo/", t.TempDir())
	if r.exit != 23 || !strings.Contains(r.stderr, "nonexistent-mitogo") {
		t.Fatalf("rsync of a missing dir: exit %d (want rsync's 23), stderr %q", r.exit, r.stderr)
	}
	r = mitogo(t, "", "scp", "-t", "sudo://mitogo-test", "--", filepath.Join(src, "a.txt"), "target:"+name+".scp")
	if got, err := os.ReadFile(home + ".scp"); r.exit != 0 || err != nil || string(got) != "alpha\n" {
		t.Fatalf("scp: exit %d, stderr %q; file %q %v", r.exit, r.stderr, got, err)
	}
}

// mitogo version and --version say what the binary is, from its build
// information; --json gives the same as one object.
func TestVersion(t *testing.T) {
	r := mitogo(t, "", "version")
	want := fmt.Sprintf("mitogo (devel) %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.exit != 0 || !strings.HasPrefix(r.stdout, want) || r.stderr != "" {
		t.Errorf("mitogo version: exit %d, stdout %q, stderr %q; want 0 and a first line %q", r.exit, r.stdout, r.stderr, want)
	}
	flag := mitogo(t, "", "--version")
	if flag.exit != 0 || flag.stdout != r.stdout {
		t.Errorf("mitogo --version: exit %d, stdout %q; want what mitogo version prints, %q", flag.exit, flag.stdout, r.stdout)
	}
	r = mitogo(t, "", "version", "--json")
	var got buildInfo
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.exit != 0 {
		t.Fatalf("mitogo version --json: exit %d, stdout %q: %v", r.exit, r.stdout, err)
	}
	if got.Module != "github.com/mitogo/mitogo" || got.Version != "(devel)" || got.Go != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("mitogo version --json = %+v", got)
	}
	for _, args := range [][]string{{"version", "extra"}, {"version", "--bogus"}, {"--version", "run"}} {
		r := mitogo(t, "", args...)
		if r.exit != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "mitogo") {
			t.Errorf("mitogo %q: exit %d, stderr %q; want 2 and one line", args, r.exit, r.stderr)
		}
	}
}

// The commit, its time and a dirty checkout come from the VCS stamp go
// build records in a repository (a git worktree is not detected, so the
// test binary may lack them).
func TestVersionFromBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/mitogo/mitogo", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2025-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	b := fromBuildInfo(info)
	var out strings.Builder
	if err := b.write(&out); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("mitogo v1.2.3 go1.26.0 %s/%s\ncommit 0123456789abcdef0123456789abcdef01234567 (modified), 2025-01-02T03:04:05Z\n", runtime.GOOS, runtime.GOARCH)
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if b := fromBuildInfo(nil); b.Version != "unknown" || b.Go != runtime.Version() {
		t.Errorf("without build information: %+v", b)
	}
}

// An unknown host key's hint names the flag that records it.
func TestUnknownHostKeyHint(t *testing.T) {
	s := sshtest.Start(t)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	r := mitogo(t, "", "run", "--known-hosts", empty, "--identity", s.ClientKey, "-t", s.User+"@"+s.Addr, "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "is not known") || !strings.Contains(r.stderr, "or connect with --host-key-policy accept-new") {
		t.Errorf("exit %d, stderr %q; want 255 and the hint --host-key-policy accept-new", r.exit, r.stderr)
	}
}
