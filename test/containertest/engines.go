package containertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Engine is podman or docker, as the tests run it.
type Engine struct {
	Name string   // "podman" or "docker": the connection method
	Tool string   // the path of its client
	Env  []string // what its client needs in the environment (DOCKER_HOST)
	As   string   // the user whose (rootless) engine this is; "" for root's
}

// NeedRootlessPodman returns the rootless podman of user (sudo -u user),
// or skips t (fails it with MITOGO_REQUIRE_PARTS=1) when it cannot run
// (newuidmap from uidmap, /etc/subuid).
func NeedRootlessPodman(t testing.TB, user string) *Engine {
	t.Helper()
	e := NeedPodman(t)
	if _, err := exec.LookPath("newuidmap"); err != nil {
		missingPart(t, "no newuidmap (uidmap) for rootless podman")
	}
	e.As = user
	return e
}

// command is argv of the engine's client, as its user.
func (e *Engine) command(args ...string) *exec.Cmd {
	argv := append([]string{e.Tool}, args...)
	if e.As != "" {
		argv = append([]string{"sudo", "-n", "-H", "-u", e.As, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), e.Env...)
	cmd.Dir = "/"
	return cmd
}

func (e *Engine) run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.command(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", e.Tool, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// DockerHostEnv names the variable test/run.sh (test/dockerd.sh) sets to
// the socket of the private dockerd it starts.
const DockerHostEnv = "MITOGO_DOCKER_HOST"

// NeedPodman returns podman, with the runc runtime (crun refuses hybrid
// cgroups), or skips t (fails it with MITOGO_REQUIRE_PARTS=1).
func NeedPodman(t testing.TB) *Engine {
	t.Helper()
	NeedRoot(t)
	for _, p := range []string{"/usr/bin/podman", "/usr/bin/runc"} {
		if _, err := os.Stat(p); err != nil {
			missingPart(t, "no "+p+" (Debian's podman and runc)")
		}
	}
	return &Engine{Name: "podman", Tool: "/usr/bin/podman"}
}

// NeedDocker returns Debian's docker client talking to the private dockerd
// whose socket is in MITOGO_DOCKER_HOST, or skips t (fails it with
// MITOGO_REQUIRE_PARTS=1). The docker first on PATH may be another
// build: this is /usr/bin/docker.
func NeedDocker(t testing.TB) *Engine {
	t.Helper()
	NeedRoot(t)
	if _, err := os.Stat("/usr/bin/docker"); err != nil {
		missingPart(t, "no /usr/bin/docker (Debian's docker.io)")
	}
	host := os.Getenv(DockerHostEnv)
	if host == "" {
		missingPart(t, DockerHostEnv+" is not set: no private dockerd (bash test/dockerd.sh start prints it)")
	}
	e := &Engine{Name: "docker", Tool: "/usr/bin/docker", Env: []string{"DOCKER_HOST=" + host}}
	cmd := exec.Command(e.Tool, "version", "--format", "{{.Server.Version}}")
	cmd.Env = append(os.Environ(), e.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		missingPart(t, fmt.Sprintf("dockerd at %s does not answer: %v: %s", host, err, out))
	}
	return e
}

// Run starts a container of rootfs that idles until removed, and returns
// its name; it is removed at t's cleanup. podman runs the directory
// (--rootfs); docker runs an image imported from a tarball of it.
func (e *Engine) Run(t testing.TB, rootfs *Rootfs) string {
	t.Helper()
	name := "mitogo-test-" + Token()
	args := []string{"run", "-d", "--name", name, "--network=none"}
	switch e.Name {
	case "podman":
		args = append(args, "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--rootfs", rootfs.Dir)
	case "docker":
		image := name + ":rootfs"
		tarball := filepath.Join(filepath.Dir(rootfs.Dir), "rootfs.tar")
		run(t, nil, "tar", "-C", rootfs.Dir, "-cf", tarball, ".")
		e.run(t, "import", tarball, image)
		t.Cleanup(func() { e.quiet("rmi", "-f", image) })
		args = append(args, image)
	}
	if e.As != "" {
		rootfs.Give(t, e.As)
	}
	e.run(t, append(args, IdleArgv...)...)
	t.Cleanup(func() { e.quiet("rm", "-f", name) })
	return name
}

// Kill stops container name at once (SIGKILL): what runs in it ends.
func (e *Engine) Kill(t testing.TB, name string) {
	t.Helper()
	e.run(t, "kill", name)
}

// Remove removes container name, running or not.
func (e *Engine) Remove(t testing.TB, name string) {
	t.Helper()
	e.run(t, "rm", "-f", name)
}

// PID is the host PID of container name's first process.
func (e *Engine) PID(t testing.TB, name string) string {
	t.Helper()
	return e.run(t, "inspect", "--type", "container", "--format", "{{.State.Pid}}", name)
}

func (e *Engine) quiet(args ...string) { e.command(args...).Run() }

// LXC starts LXC containers (lxc-start, lxc-attach from Debian's lxc 5).
type LXC struct{}

// NeedLXC returns LXC, or skips t (fails it with MITOGO_REQUIRE_PARTS=1).
func NeedLXC(t testing.TB) *LXC {
	t.Helper()
	NeedRoot(t)
	for _, tool := range []string{"lxc-start", "lxc-attach", "lxc-info", "lxc-stop", "lxc-destroy"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingPart(t, "no "+tool+" (Debian's lxc)")
		}
	}
	return &LXC{}
}

// Run starts a container of rootfs in the default lxcpath, with no
// network and no AppArmor profile, and returns its name; it is stopped
// and its configuration removed at t's cleanup (the rootfs is t's).
func (*LXC) Run(t testing.TB, rootfs *Rootfs) string {
	t.Helper()
	name := "mitogo-test-" + Token()
	cfgDir := filepath.Join("/var/lib/lxc", name)
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("lxc-stop", "-n", name, "-k").Run()
		os.RemoveAll(cfgDir)
	})
	cfg := strings.Join([]string{
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = dir:" + rootfs.Dir,
		"lxc.net.0.type = empty",
		"lxc.apparmor.profile = unconfined",
		"lxc.prlimit.nofile = 1024",
		"lxc.mount.auto = proc:mixed sys:ro",
		"lxc.init.cmd = " + strings.Join(IdleArgv, " "),
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(cfgDir, "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, "lxc-start", "-n", name, "-l", "INFO", "-o", filepath.Join(filepath.Dir(rootfs.Dir), "lxc.log"))
	run(t, nil, "lxc-wait", "-n", name, "-s", "RUNNING", "-t", "30")
	return name
}

// Kill stops container name at once.
func (*LXC) Kill(t testing.TB, name string) {
	t.Helper()
	run(t, nil, "lxc-stop", "-n", name, "-k")
}

// Namespaced is a process in new PID, mount, UTS and IPC namespaces,
// chroot'ed into a rootfs (unshare --root), for nsenter.
type Namespaced struct {
	PID  int // the process's PID on the host
	proc *os.Process
}

// Unshare starts a process that idles in new namespaces with rootfs as
// its root; it is killed at t's cleanup.
func Unshare(t testing.TB, rootfs *Rootfs) *Namespaced {
	t.Helper()
	NeedRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		missingPart(t, "no unshare (util-linux)")
	}
	cmd := exec.Command("unshare", append([]string{"--fork", "--kill-child", "--pid", "--mount", "--uts", "--ipc",
		"--root=" + rootfs.Dir, "--mount-proc"}, IdleArgv...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The idle process is unshare's only child, once it has forked.
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	for i := 0; ; i++ {
		b, _ := os.ReadFile(children)
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
			return &Namespaced{PID: pid, proc: cmd.Process}
		}
		if i == 5000 {
			t.Fatalf("unshare (pid %d) started no child", cmd.Process.Pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// Kill kills the process, and with it its PID namespace.
func (n *Namespaced) Kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
