package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/test/sshtest"
)

// caller calls record on the cluster's hosts in a loop from several
// goroutines while faults happen, and keeps every call's outcome.
type caller struct {
	cl    *cluster.Client
	hosts []string
	log   string

	mu       sync.Mutex
	outcomes map[string]error // call ID → its error (nil: it succeeded)
	n        int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startCaller(cl *cluster.Client, hosts []string, log string, workers int) *caller {
	ctx, cancel := context.WithCancel(context.Background())
	c := &caller{cl: cl, hosts: hosts, log: log, outcomes: map[string]error{}, cancel: cancel}
	for w := range workers {
		c.wg.Go(func() {
			for i := w; ctx.Err() == nil; i += workers {
				h := hosts[i%len(hosts)]
				id := fmt.Sprintf("bg%d-%d-%s", w, i, h)
				cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := cluster.CallFunc(cctx, cl, h, record, recordArgs{ID: id, Host: h, Log: log})
				ccancel()
				if ctx.Err() != nil && errors.Is(err, cluster.ErrOutcomeUnknown) {
					err = nil // cut short by stop: only its run count is checked
					id = "stopped:" + id
				}
				c.mu.Lock()
				c.outcomes[id] = err
				c.n++
				c.mu.Unlock()
			}
		})
	}
	return c
}

func (c *caller) stop() map[string]error {
	c.cancel()
	c.wg.Wait()
	return c.outcomes
}

// round calls record once on every host, IDs prefixed by name, and
// returns each call's outcome.
func round(ctx context.Context, cl *cluster.Client, hosts []string, name, log string) map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() {
			id := name + "-" + h
			_, err := cluster.CallFunc(ctx, cl, h, record, recordArgs{ID: id, Host: h, Log: log})
			mu.Lock()
			out[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// runs reads the record log: how many times each call ID ran, and the
// pid of the controller each ran under (its parent, for a local host).
func runs(t *testing.T, log string) (count map[string]int, under map[string]string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	count, under = map[string]int{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			count[f[0]]++
			under[f[0]] = f[2]
		}
	}
	return count, under
}

// checkOutcomes asserts what a user relies on: a call that succeeded ran
// once; one that failed saying it did not run (ErrNoOwner, ErrNotOwner,
// ErrFenced, ErrUnavailable, ErrExpired) did not run; one whose outcome
// is unknown ran at most once; no other error; no call ran twice.
func checkOutcomes(t *testing.T, log string, outcomes map[string]error) {
	t.Helper()
	count, _ := runs(t, log)
	byCause := map[string]int{}
	for id, err := range outcomes {
		id, stopped := strings.CutPrefix(id, "stopped:")
		n := count[id]
		var he *cluster.HostError
		switch {
		case err == nil && stopped:
			if n > 1 {
				t.Errorf("call %s (cut short) ran %d times", id, n)
			}
		case err == nil:
			byCause["ok"]++
			if n != 1 {
				t.Errorf("call %s succeeded but ran %d times", id, n)
			}
		case !errors.As(err, &he):
			t.Errorf("call %s: %v: not a *cluster.HostError", id, err)
		case errors.Is(err, cluster.ErrOutcomeUnknown):
			byCause["outcome unknown"]++
			if n > 1 {
				t.Errorf("call %s (outcome unknown) ran %d times", id, n)
			}
		case errors.Is(err, cluster.ErrNoOwner), errors.Is(err, cluster.ErrNotOwner), errors.Is(err, cluster.ErrFenced),
			errors.Is(err, cluster.ErrUnavailable), errors.Is(err, cluster.ErrExpired):
			byCause[strings.SplitN(errors.Unwrap(he).Error(), ":", 2)[0]]++
			if n != 0 {
				t.Errorf("call %s failed with %v, which says it did not run, but it ran %d times", id, err, n)
			}
		default:
			t.Errorf("call %s: unclear error %v", id, err)
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("call %s ran %d times", id, n)
		}
	}
	t.Logf("%d calls: %v", len(outcomes), byCause)
}

// mustAllSucceed asserts that every call of a round succeeded.
func mustAllSucceed(t *testing.T, name string, outcomes map[string]error) {
	t.Helper()
	for id, err := range outcomes {
		if err != nil {
			t.Errorf("round %s: call %s: %v", name, id, err)
		}
	}
}

// leases returns every host's lease.
func (tc *testCluster) leases() map[string]cluster.LeaseInfo {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := tc.client.Status(ctx)
	if err != nil {
		tc.t.Fatal(err)
	}
	out := map[string]cluster.LeaseInfo{}
	for _, l := range st.Leases {
		l.Renewed = time.Time{} // changes at every renewal: leases compare by holder and epoch
		out[l.Host] = l
	}
	return out
}

// sameLease reports whether two reads of a host's lease are of the same
// lease: the same owner under the same epoch. (Ready turns true once its
// owner connects, which may come between the reads.)
func sameLease(a, b cluster.LeaseInfo) bool {
	return a.Owner == b.Owner && a.Epoch == b.Epoch
}

// waitReleased waits until every host that owner held in before is held
// again, under a new lease, and every other host is held by its owner in
// before; it returns every host's lease.
func (tc *testCluster) waitReleased(before map[string]cluster.LeaseInfo, owner string) map[string]cluster.LeaseInfo {
	t := tc.t
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		now := tc.leases()
		var waiting []string
		for h, l := range before {
			if n, ok := now[h]; !ok || !n.Ready || (l.Owner == owner && n.Epoch == l.Epoch) {
				waiting = append(waiting, h)
			}
		}
		if len(waiting) == 0 {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, hosts %v are not held again: %+v", waitFor, waiting, now)
		}
		time.Sleep(200 * time.Millisecond) // polling the buckets, bounded by the deadline
	}
}

// waitMember waits until the member id advertises itself with drives
// hosts.
func (tc *testCluster) waitMember(id string, drives int) {
	t := tc.t
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := tc.client.Status(ctx)
		cancel()
		if err == nil {
			for _, m := range st.Members {
				if m.ID == id && m.Hosts == drives {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, member %s does not advertise %d hosts: %+v (%v)", waitFor, id, drives, st, err)
		}
		time.Sleep(200 * time.Millisecond) // polling the buckets, bounded by the deadline
	}
}

// waitChildrenGone waits until the process pid has no live child (a
// stopped process cannot reap its children: zombies count as gone).
func waitChildrenGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		live := liveChildren(pid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, process %d still has live children %v", pid, live)
		}
		time.Sleep(50 * time.Millisecond) // polling /proc, bounded by the deadline
	}
}

func liveChildren(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// waitInFlight starts a sleep call on host and waits until it runs.
func waitInFlight(t *testing.T, ctx context.Context, cl *cluster.Client, host string) <-chan error {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "sleeping")
	inflight := make(chan error, 1)
	go func() {
		_, err := cluster.CallFunc(ctx, cl, host, sleep, sleepArgs{Marker: marker, D: time.Minute})
		inflight <- err
	}()
	for {
		if _, err := os.Stat(marker); err == nil {
			return inflight
		}
		select {
		case err := <-inflight:
			t.Fatalf("sleep on %s returned before the fault: %v", host, err)
		case <-time.After(20 * time.Millisecond): // polling for the marker
		}
	}
}

// TestFaults runs one cluster of three controller processes, with calls
// going on all along, through a cut of one controller's NATS connection,
// a controller paused past its lease, and a controller restarted.
func TestFaults(t *testing.T) {
	const nLocal, nSSH = 10, 2
	var inv strings.Builder
	var hosts []string
	for i := range nLocal {
		name := fmt.Sprintf("h%02d", i)
		hosts = append(hosts, name)
		fmt.Fprintf(&inv, "%s local\n", name)
	}
	s := sshtest.Start(t)
	for i := range nSSH {
		name := fmt.Sprintf("s%02d", i)
		hosts = append(hosts, name)
		fmt.Fprintf(&inv, "%s ssh:%s identity=%s known-hosts=%s\n", name, s.Addr, s.ClientKey, s.KnownHosts)
	}
	ttl := testTTL
	tc := newTestCluster(t, inv.String(), ttl)
	rel := newRelay(t, tc.srv.URL())
	tc.via["c"] = rel.URL()
	tc.start("a", "b", "c")
	tc.waitLeases(hosts, "a", "b", "c")
	log := filepath.Join(t.TempDir(), "calls")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mustAllSucceed(t, "start", round(ctx, tc.client, hosts, "start", log))
	bg := startCaller(tc.client, hosts, log, 3)
	defer func() { checkOutcomes(t, log, bg.stop()) }()

	t.Run("cut", func(t *testing.T) {
		tc.t = t
		before := tc.leases()
		var mine []string
		for h, l := range before {
			if l.Owner == "c" {
				mine = append(mine, h)
			}
		}
		if len(mine) == 0 {
			t.Fatalf("controller c owns no host: %+v", before)
		}
		inflight := waitInFlight(t, ctx, tc.client, mine[0])
		rel.Cut()
		if err := <-inflight; !errors.Is(err, cluster.ErrOutcomeUnknown) {
			t.Errorf("call in flight on %s at the cut: %v, want ErrOutcomeUnknown", mine[0], err)
		}
		tc.waitLeases(hosts, "a", "b")
		// Host side: c's contexts to its old hosts ended while it was cut
		// off (a newer owner took each host's token).
		waitChildrenGone(t, tc.members["c"].cmd.Process.Pid)
		mustAllSucceed(t, "cut", round(ctx, tc.client, hosts, "cut", log))

		taken := tc.leases()
		rel.Heal()
		healed := round(ctx, tc.client, hosts, "healed", log) // races c's return
		checkOutcomes(t, log, healed)
		tc.waitMember("c", 0)
		mustAllSucceed(t, "rejoined", round(ctx, tc.client, hosts, "rejoined", log))
		for h, l := range tc.leases() {
			if !sameLease(l, taken[h]) {
				t.Errorf("host %s: lease %+v after c rejoined, %+v before: c must not steal", h, l, taken[h])
			}
		}
		_, under := runs(t, log)
		cpid := strconv.Itoa(tc.members["c"].cmd.Process.Pid)
		for id, pid := range under {
			if (strings.HasPrefix(id, "cut-") || strings.HasPrefix(id, "healed-") || strings.HasPrefix(id, "rejoined-")) && pid == cpid {
				t.Errorf("call %s ran under c, which had lost its hosts", id)
			}
		}
	})

	t.Run("pause", func(t *testing.T) {
		tc.t = t
		// The hosts are a's and b's now; pause b past its leases.
		var mine []string
		for h, l := range tc.leases() {
			if l.Owner == "b" {
				mine = append(mine, h)
			}
		}
		if len(mine) == 0 {
			t.Fatalf("controller b owns no host")
		}
		bm := tc.members["b"]
		inflight := waitInFlight(t, ctx, tc.client, mine[0])
		if err := bm.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				bm.cmd.Process.Signal(syscall.SIGCONT)
			}
		}()
		if err := <-inflight; !errors.Is(err, cluster.ErrOutcomeUnknown) {
			t.Errorf("call in flight on %s at the pause: %v, want ErrOutcomeUnknown", mine[0], err)
		}
		tc.waitLeases(hosts, "a", "c")
		// Host side: b's contexts exit while b is paused (it cannot end
		// them itself): each saw a newer owner's token.
		waitChildrenGone(t, bm.cmd.Process.Pid)
		mustAllSucceed(t, "paused", round(ctx, tc.client, hosts, "paused", log))

		taken := tc.leases()
		if err := bm.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		stopped = false
		woke := round(ctx, tc.client, hosts, "woke", log) // races b's waking
		checkOutcomes(t, log, woke)
		tc.waitMember("b", 0)
		mustAllSucceed(t, "awake", round(ctx, tc.client, hosts, "awake", log))
		for h, l := range tc.leases() {
			if !sameLease(l, taken[h]) {
				t.Errorf("host %s: lease %+v after b woke, %+v before: b must not take it back", h, l, taken[h])
			}
		}
		_, under := runs(t, log)
		bpid := strconv.Itoa(bm.cmd.Process.Pid)
		for id, pid := range under {
			if (strings.HasPrefix(id, "paused-") || strings.HasPrefix(id, "woke-") || strings.HasPrefix(id, "awake-")) && pid == bpid {
				t.Errorf("call %s ran under b, which had lost its hosts", id)
			}
		}
	})

	t.Run("restart", func(t *testing.T) {
		tc.t = t
		before := tc.leases()
		am := tc.members["a"]
		am.cmd.Process.Kill()
		<-am.done
		tc.start("a") // the same name, at once: its old entry has not aged out
		after := tc.waitReleased(before, "a")
		for h, l := range before {
			if l.Owner != "a" && !sameLease(after[h], l) {
				t.Errorf("host %s: lease %+v after a restarted, %+v before: only a's old hosts may move", h, after[h], l)
			}
		}
		mustAllSucceed(t, "restarted", round(ctx, tc.client, hosts, "restarted", log))
	})
	tc.t = t
}
