package sshtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Where `ip netns` keeps its named namespaces, and the lock file that
// serialises building topologies across test processes.
const (
	netnsDir    = "/run/netns"
	netnsLock   = "/run/mitogo-sshtest-netns.lock"
	netnsPrefix = "mgt" // every namespace and root-side link made here starts with it
	netnsHint   = "run `bash test/run.sh` as root, which installs iproute2"
	maxSlot     = 126 // slots 0..126 use 10.77.1.0/24 .. 10.77.254.0/24
	maxIfName   = 15  // IFNAMSIZ less the NUL
)

// slotNets returns the third octets of slot n's networks: 10.77.outer.0/24
// joins the root namespace and A, 10.77.inner.0/24 joins A and B. Root-side
// networks are odd and inner ones even, so topologies never share one.
func slotNets(n int) (outer, inner int) { return 2*n + 1, 2*n + 2 }

// Topology is a small network of two network namespaces behind the test's
// own (the root namespace):
//
//	root RootIP ══veth══ AIP  A  AInnerIP ══veth══ BIP  B
//	     10.77.1.1       10.77.1.2  10.77.2.1      10.77.2.2
//
// The test reaches A. It cannot reach B: the root namespace has no route
// to B's network (and a new namespace such as A does not forward by
// default). Processes inside A reach B. Each namespace's
// loopback is up. The addresses above are those of the first topology; when
// that network is taken (by another test process, or by the machine), the
// next free pair of 10.77.x.0/24 networks is used, so read the fields.
type Topology struct {
	A, B     string // the namespaces' names, for Netns and `ip netns exec`
	RootIP   string // the test's end of the root–A link
	AIP      string // A's end of the root–A link: reachable from the test
	AInnerIP string // A's end of the A–B link
	BIP      string // B's end of the A–B link: reachable from A only

	rootLink string // the veth end in the root namespace
}

// netnsState numbers this process's topologies and remembers whether the
// leftovers of earlier processes were cleared.
var netnsState struct {
	sync.Mutex
	seq     int
	cleared bool
}

// NewTopology builds a Topology for the test and removes it at cleanup. Its
// namespaces are named mgt-<pid>-<n>-a and -b, its root-side link
// mgt<pid>-<n>. Namespaces and links of that shape left behind by test
// processes that are gone (or by an earlier process with this one's pid)
// are deleted first; those of live processes are left alone.
//
// It skips the test (fails it with MITOGO_REQUIRE_PARTS=1) when it is not
// root or the ip command (package iproute2) is missing; it skips when `ip
// netns add` is not allowed here, as in a container without CAP_SYS_ADMIN.
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "no ip in PATH (package iproute2)")
	}
	if len(missing) > 0 {
		missingPart(t, "sshtest: cannot make network namespaces: "+strings.Join(missing, "; ")+"; "+netnsHint)
	}

	// One builder at a time, in this process and across processes: the
	// choice of a free network and claiming it must not interleave.
	netnsState.Lock()
	defer netnsState.Unlock()
	unlock, err := lockFile(netnsLock)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer unlock()

	if !netnsState.cleared {
		netnsState.cleared = true
		removeNetnsLeftovers(t)
	}
	netnsState.seq++
	pid, seq := os.Getpid(), netnsState.seq
	slot, err := freeSlot()
	if err != nil {
		t.Fatalf("sshtest: choosing networks for the topology: %v", err)
	}
	outer, inner := slotNets(slot)
	topo := &Topology{
		A:        fmt.Sprintf("%s-%d-%d-a", netnsPrefix, pid, seq),
		B:        fmt.Sprintf("%s-%d-%d-b", netnsPrefix, pid, seq),
		RootIP:   fmt.Sprintf("10.77.%d.1", outer),
		AIP:      fmt.Sprintf("10.77.%d.2", outer),
		AInnerIP: fmt.Sprintf("10.77.%d.1", inner),
		BIP:      fmt.Sprintf("10.77.%d.2", inner),
		rootLink: fmt.Sprintf("%s%d-%d", netnsPrefix, pid, seq),
	}
	if len(topo.rootLink) > maxIfName {
		t.Fatalf("sshtest: link name %s is longer than %d bytes", topo.rootLink, maxIfName)
	}

	// The first namespace tells whether namespaces can be made here at all.
	// A kernel or container that refuses them is not a part test/run.sh can
	// install: the test skips, saying so, even in CI.
	if err := ipCmd("netns", "add", topo.A); err != nil {
		t.Skip("sshtest: this machine refuses network namespaces (a container without CAP_SYS_ADMIN?): " + err.Error())
	}
	// Undone in reverse order at cleanup; deleting a veth end deletes its
	// peer, and deleting a namespace the links left in it.
	undo := [][]string{{"netns", "del", topo.A}}
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if err := ipCmd(undo[i]...); err != nil {
				t.Errorf("sshtest: removing the network topology: %v", err)
			}
		}
	})
	steps := []struct {
		args []string
		undo []string
	}{
		{args: []string{"netns", "add", topo.B}, undo: []string{"netns", "del", topo.B}},
		{args: []string{"link", "add", topo.rootLink, "type", "veth", "peer", "name", "to-root", "netns", topo.A},
			undo: []string{"link", "del", topo.rootLink}},
		{args: []string{"addr", "add", topo.RootIP + "/24", "dev", topo.rootLink}},
		{args: []string{"link", "set", topo.rootLink, "up"}},
		{args: []string{"-n", topo.A, "addr", "add", topo.AIP + "/24", "dev", "to-root"}},
		{args: []string{"-n", topo.A, "link", "set", "to-root", "up"}},
		{args: []string{"-n", topo.A, "link", "set", "lo", "up"}},
		{args: []string{"-n", topo.A, "link", "add", "to-b", "type", "veth", "peer", "name", "to-a", "netns", topo.B},
			undo: []string{"-n", topo.A, "link", "del", "to-b"}},
		{args: []string{"-n", topo.A, "addr", "add", topo.AInnerIP + "/24", "dev", "to-b"}},
		{args: []string{"-n", topo.A, "link", "set", "to-b", "up"}},
		{args: []string{"-n", topo.B, "addr", "add", topo.BIP + "/24", "dev", "to-a"}},
		{args: []string{"-n", topo.B, "link", "set", "to-a", "up"}},
		{args: []string{"-n", topo.B, "link", "set", "lo", "up"}},
	}
	for _, st := range steps {
		if err := ipCmd(st.args...); err != nil {
			t.Fatalf("sshtest: building the network topology: %v", err)
		}
		if st.undo != nil {
			undo = append(undo, st.undo)
		}
	}
	return topo
}

// ipCmd runs the ip command with args.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// lockFile takes an exclusive flock on path, creating it, and returns its
// release.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// freeSlot returns the first slot n (see slotNets) neither of whose
// networks overlaps a route or an address of the root namespace.
// Every topology's root–A network is routed there while it exists; its A–B
// network must not be reachable from there either.
func freeSlot() (int, error) {
	var used []*net.IPNet
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return 0, fmt.Errorf("ip -4 route show table all: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// The destination is the first field, or the second after a route
		// type such as "unreachable" or "local"; "default" is skipped.
		f := strings.Fields(line)
		for _, word := range f[:min(len(f), 2)] {
			if n := parseNet(word); n != nil {
				used = append(used, n)
				break
			}
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			used = append(used, n)
		}
	}
	overlaps := func(third int) bool {
		cand := &net.IPNet{IP: net.IPv4(10, 77, byte(third), 0).To4(), Mask: net.CIDRMask(24, 32)}
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				return true
			}
		}
		return false
	}
	for n := 0; n <= maxSlot; n++ {
		if outer, inner := slotNets(n); !overlaps(outer) && !overlaps(inner) {
			return n, nil
		}
	}
	return 0, errors.New("every pair of networks in 10.77.0.0/16 is in use (leftover topologies?)")
}

// parseNet parses a route destination, a.b.c.d/len or a.b.c.d.
func parseNet(s string) *net.IPNet {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n
	}
	if ip := net.ParseIP(s).To4(); ip != nil {
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}
	}
	return nil
}

var (
	leftoverNetns = regexp.MustCompile(`^` + netnsPrefix + `-(\d+)-\d+-[ab]$`)
	leftoverLink  = regexp.MustCompile(`^` + netnsPrefix + `(\d+)-\d+$`)
)

// removeNetnsLeftovers deletes the namespaces and root-side links that
// topologies of dead test processes left behind, as when a test binary was
// killed before its cleanup. Before this process makes its first topology,
// names carrying its own pid are leftovers too (pids are reused). Failures
// are logged: a leftover only costs a network slot.
func removeNetnsLeftovers(t testing.TB) {
	t.Helper()
	stale := func(re *regexp.Regexp, name string) bool {
		m := re.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil {
			return false
		}
		return pid == os.Getpid() || syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifs {
			if stale(leftoverLink, ifc.Name) {
				logLeftover(t, ipCmd("link", "del", ifc.Name), "link "+ifc.Name)
			}
		}
	}
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return // no namespaces yet
	}
	for _, e := range ents {
		if stale(leftoverNetns, e.Name()) {
			logLeftover(t, ipCmd("netns", "del", e.Name()), "network namespace "+e.Name())
		}
	}
}

func logLeftover(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Logf("sshtest: could not remove the leftover %s: %v", what, err)
		return
	}
	t.Logf("sshtest: removed the leftover %s of an earlier test run", what)
}

// netnsPath is where `ip netns` mounts the named namespace.
func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// inNetns runs fn in the named network namespace, or right here when name
// is "". fn runs on an OS thread that has joined the namespace: sockets it
// opens in its own goroutine belong to that namespace (and stay there), so
// it can dial and listen on the namespace's addresses.
//
// The thread returns to its namespace afterwards and goes back to the Go
// runtime. Letting it end instead (exit while locked) would be simpler but
// wrong: a child started with Pdeathsig, as sshd is, is killed when the
// thread that started it ends, and that may have been this very thread.
// Only if the return fails does the thread stay locked, so the runtime ends
// it rather than run other goroutines in the wrong namespace.
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer home.Close()
		target, err := os.Open(netnsPath(name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening network namespace: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("joining network namespace %s: %w", name, err)
			return
		}
		err = fn()
		if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("leaving network namespace %s: %w", name, rerr))
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}
