// Package containertest builds root filesystems and starts real podman,
// docker and LXC containers from them, for tests of the container and
// namespace connection methods. Nothing comes from a registry and no
// container has a network (--network=none, lxc.net.0.type=empty).
//
// A root filesystem (NewRootfs) holds busybox (a static build:
// busybox-static) with its applets as /bin/*, /tmp (1777), /root, an
// /etc/passwd with root and "app" (uid 1000, HOME "/", which it does not
// own: stage 1 then caches in /tmp), the libraries the running test binary
// links with (ldd) and a marker file /etc/mitogo-rootfs holding a token.
//
// Each Need function skips the test (fails it with MITOGO_REQUIRE_PARTS=1)
// when a part is missing; `bash test/run.sh` installs them (podman, runc,
// docker.io, lxc, busybox-static) and starts a private dockerd
// (test/dockerd.sh), whose socket it exports as MITOGO_DOCKER_HOST.
package containertest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const requireEnv = "MITOGO_REQUIRE_PARTS"

// User is the rootfs's unprivileged account: uid 1000, HOME "/".
const User = "app"

// missingPart skips t, or fails it when MITOGO_REQUIRE_PARTS=1.
func missingPart(t testing.TB, msg string) {
	t.Helper()
	msg = "containertest: " + msg + " (bash test/run.sh installs and starts what the container tests need)"
	if os.Getenv(requireEnv) == "1" {
		t.Fatal(msg + " (failing, not skipping, because " + requireEnv + "=1)")
	}
	t.Skip(msg)
}

// NeedRoot skips t (fails it with MITOGO_REQUIRE_PARTS=1) unless it runs as
// root: the container tools, nsenter and chroot need it.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		missingPart(t, "the container tests run as root")
	}
}

// Token returns a fresh random name part.
func Token() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Rootfs is a root filesystem built for a test.
type Rootfs struct {
	Dir   string // its root
	Token string // the content of /etc/mitogo-rootfs
}

// RootfsOption changes what NewRootfs builds.
type RootfsOption func(*rootfsConfig)

type rootfsConfig struct{ noShell bool }

// NoShell leaves /bin/sh out (busybox and its other applets stay): a
// container without a shell.
func NoShell() RootfsOption { return func(c *rootfsConfig) { c.noShell = true } }

// NewRootfs builds a root filesystem in a temporary directory of t.
func NewRootfs(t testing.TB, opts ...RootfsOption) *Rootfs {
	t.Helper()
	var cfg rootfsConfig
	for _, o := range opts {
		o(&cfg)
	}
	NeedRoot(t)
	bb, err := staticBusybox()
	if err != nil {
		missingPart(t, err.Error())
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	r := &Rootfs{Dir: dir, Token: Token()}
	for _, d := range []string{"bin", "etc", "root", "tmp", "proc", "sys", "dev", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(bb, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || (cfg.noShell && (applet == "sh" || applet == "ash")) {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n" + User + ":x:1000:1000:app:/:/bin/sh\n",
		"etc/group":         "root:x:0:\n" + User + ":x:1000:\n",
		"etc/mitogo-rootfs": r.Token,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The devices a shell and Go's runtime use; the engines mount their
	// own /dev over these, a chroot has only them.
	for name, minor := range map[string]uint32{"null": 3, "zero": 5, "random": 8, "urandom": 9} {
		if err := unix.Mknod(filepath.Join(dir, "dev", name), unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "dev", name), 0o666); err != nil { // not the umask's
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	libs, err := sharedLibraries(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		dst := filepath.Join(dir, lib)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(lib, dst, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// IdleArgv is the command line of a container's first process: sleep in
// busybox, which needs no shell and ends on SIGTERM.
var IdleArgv = []string{"/bin/busybox", "sleep", "86400"}

// staticBusybox finds a statically linked busybox (busybox-static), which
// runs in a root filesystem without a libc.
func staticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
		return "", fmt.Errorf("%s is not statically linked (install busybox-static)", p)
	}
	return "", fmt.Errorf("no busybox (install busybox-static)")
}

// sharedLibraries lists the files ldd says exe loads, the dynamic loader
// with them; none for a static binary.
func sharedLibraries(exe string) ([]string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, err
	}
	interp := false
	for _, prog := range f.Progs {
		interp = interp || prog.Type == elf.PT_INTERP
	}
	f.Close()
	if !interp {
		return nil, nil
	}
	out, err := exec.Command("ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", exe, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// run runs argv with env added, failing t with its output on an error.
func run(t testing.TB, env []string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return strings.TrimSpace(string(out))
}

// MountProc mounts a proc filesystem on the rootfs's /proc, as a chroot
// needs (a child finds its binary through /proc/self/exe); it is
// unmounted at t's cleanup.
func (r *Rootfs) MountProc(t testing.TB) {
	t.Helper()
	dir := filepath.Join(r.Dir, "proc")
	if err := syscall.Mount("proc", dir, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mounting proc on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
}

// Give makes the rootfs user's (a rootless engine runs it as that user)
// and lets the user reach it through its parent directories.
func (r *Rootfs) Give(t testing.TB, user string) {
	t.Helper()
	run(t, nil, "chown", "-R", user, r.Dir)
	for d := filepath.Dir(r.Dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
