package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
)

// pid returns the pid of the context it runs in.
var pid = actors.Register("clustertest.pid", func(ctx context.Context, _ struct{}) (int, error) {
	return os.Getpid(), nil
})

func localInventory(n int) (string, []string) {
	var inv strings.Builder
	var hosts []string
	for i := range n {
		name := fmt.Sprintf("h%02d", i)
		hosts = append(hosts, name)
		fmt.Fprintf(&inv, "%s local\n", name)
	}
	return inv.String(), hosts
}

// status reads the cluster's status.
func (tc *testCluster) status() *cluster.Status {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := tc.client.Status(ctx)
	if err != nil {
		tc.t.Fatal(err)
	}
	return st
}

// waitFor polls the cluster's status until ok holds, and fails the test
// with what describes the wait after 90s.
func (tc *testCluster) waitFor(what string, ok func(*cluster.Status) bool) *cluster.Status {
	t := tc.t
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := tc.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s, still waiting for %s: members %+v, leases %+v", what, st.Members, st.Leases)
		}
		time.Sleep(50 * time.Millisecond) // polling the buckets, bounded by the deadline
	}
}

func owners(st *cluster.Status) map[string]int {
	n := map[string]int{}
	for _, l := range st.Leases {
		n[l.Owner]++
	}
	return n
}

// A drained controller hands every host over to the others while calls
// go on: a call in flight at the drain finishes, every call succeeds once
// or fails saying it did not run, none runs on two controllers, none runs
// under the drained controller after the drain, and every host ends up
// held by another member.
func TestDrain(t *testing.T) {
	inv, hosts := localInventory(12)
	tc := newTestCluster(t, inv, 6*time.Second)
	tc.start("a", "b", "c")
	before := tc.waitLeases(hosts, "a", "b", "c")
	// The members share the hosts when they see each other in time; the
	// drained one is the owner of h00, whichever it is.
	victim := before[hosts[0]]
	var mine []string
	for h, o := range before {
		if o == victim {
			mine = append(mine, h)
		}
	}
	var others []string
	for _, id := range []string{"a", "b", "c"} {
		if id != victim {
			others = append(others, id)
		}
	}
	log := filepath.Join(t.TempDir(), "calls")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mustAllSucceed(t, "start", round(ctx, tc.client, hosts, "start", log))
	bg := startCaller(tc.client, hosts, log, 3)
	checked := false
	defer func() {
		if !checked {
			bg.stop()
		}
	}()

	// A call that runs across the drain, well within its grace.
	marker := filepath.Join(t.TempDir(), "sleeping")
	inflight := make(chan error, 1)
	go func() {
		_, err := cluster.CallFunc(ctx, tc.client, mine[0], sleep, sleepArgs{Marker: marker, D: 2 * time.Second})
		inflight <- err
	}()
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		select {
		case err := <-inflight:
			t.Fatalf("sleep on %s returned before the drain: %v", mine[0], err)
		case <-time.After(20 * time.Millisecond): // polling for the marker
		}
	}

	moves, err := tc.client.Drain(ctx, victim, cluster.HandoverOptions{Settle: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-inflight; err != nil {
		t.Errorf("call in flight during the drain: %v (want it to finish)", err)
	}
	if len(moves) == 0 {
		t.Errorf("drain moved nothing, want the hosts of %s %v", victim, mine)
	}
	for _, mv := range moves {
		if mv.From != victim || (mv.To != others[0] && mv.To != others[1]) || mv.Why != cluster.WhyDrain {
			t.Errorf("move %+v: want from %s to %v, for a drain", mv, victim, others)
		}
	}
	tc.waitLeases(hosts, others...)
	// The drained member says so, with no host.
	st := tc.waitFor("the members' entries to show the drain", func(st *cluster.Status) bool {
		for _, m := range st.Members {
			if m.ID == victim && (!m.Draining || m.Hosts != 0) {
				return false
			}
		}
		return st.LastMove != nil && st.LastMove.From == victim
	})
	// A release whose writes time out (a loaded machine) lets the lease
	// lapse instead: its host is then taken over as after a failure.
	if mv := st.LastMove; mv == nil || mv.From != victim || (mv.Why != cluster.WhyDrain && mv.Why != cluster.WhyFailover) {
		t.Errorf("status: last move %+v, want one from %s for the drain", mv, victim)
	}

	checked = true
	checkOutcomes(t, log, bg.stop())
	// After the drain, nothing runs under the drained controller.
	after := round(ctx, tc.client, hosts, "after", log)
	mustAllSucceed(t, "after", after)
	_, under := runs(t, log)
	vpid := strconv.Itoa(tc.members[victim].cmd.Process.Pid)
	for id := range after {
		if under[id] == vpid {
			t.Errorf("call %s ran under the drained controller %s", id, victim)
		}
	}

	if err := tc.client.Resume(ctx, victim); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(victim+" to resume", func(st *cluster.Status) bool {
		for _, m := range st.Members {
			if m.ID == victim {
				return !m.Draining
			}
		}
		return false
	})
	if _, err := tc.client.Drain(ctx, "nobody", cluster.HandoverOptions{}); !errors.Is(err, cluster.ErrNoMember) {
		t.Errorf("drain of a member that does not exist: %v, want ErrNoMember", err)
	}
}

// A member that joins takes no host on its own; a rebalance moves hosts
// to it, a few at a time, until both own some, and a second rebalance
// moves nothing.
func TestRebalance(t *testing.T) {
	inv, hosts := localInventory(12)
	tc := newTestCluster(t, inv, 6*time.Second)
	tc.start("a")
	tc.waitLeases(hosts, "a")
	tc.start("b")
	tc.waitMember("b", 0)
	log := filepath.Join(t.TempDir(), "calls")
	bg := startCaller(tc.client, hosts, log, 2)
	checked := false
	defer func() {
		if !checked {
			bg.stop()
		}
	}()
	if n := owners(tc.status())["b"]; n != 0 {
		t.Fatalf("member b took %d hosts on its own after joining", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	moves, err := tc.client.Rebalance(ctx, cluster.HandoverOptions{Batch: 2, Settle: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(moves) == 0 {
		t.Fatal("rebalance moved nothing")
	}
	for _, mv := range moves {
		if mv.From != "a" || mv.To != "b" {
			t.Errorf("move %+v: want from a to b", mv)
		}
	}
	n := owners(tc.waitFor("a and b to hold every host, both some", func(st *cluster.Status) bool {
		n := owners(st)
		return n["a"] > 0 && n["b"] > 0 && n["a"]+n["b"] == len(hosts)
	}))
	t.Logf("after rebalance: %v, %d moves", n, len(moves))
	again, err := tc.client.Rebalance(ctx, cluster.HandoverOptions{Batch: 2, Settle: 90 * time.Second})
	if err != nil || len(again) != 0 {
		t.Errorf("second rebalance: moves %v, error %v; want none", again, err)
	}
	checked = true
	checkOutcomes(t, log, bg.stop())
	tc.waitLeases(hosts, "a", "b")
	mustAllSucceed(t, "after", round(ctx, tc.client, hosts, "after", log))
}

// A controller picks up its edited inventory without a restart: an added
// host is claimed, a removed one released and its context shut down, a
// changed one reconnected under a new lease.
func TestInventoryReload(t *testing.T) {
	inv, hosts := localInventory(4)
	tc := newTestCluster(t, inv, 6*time.Second)
	tc.start("a")
	tc.waitLeases(hosts, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gone, err := cluster.CallFunc(ctx, tc.client, "h00", pid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	before := tc.leases()

	// h00 removed, h01 changed, h04 added.
	edited := "h01 local connect-timeout=20s\nh02 local\nh03 local\nh04 local\n"
	tmp := tc.inv + ".new"
	if err := os.WriteFile(tmp, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, tc.inv); err != nil {
		t.Fatal(err)
	}
	tc.waitFor("the edited inventory", func(st *cluster.Status) bool {
		now := map[string]cluster.LeaseInfo{}
		for _, l := range st.Leases {
			now[l.Host] = l
		}
		_, h00 := now["h00"]
		return !h00 && now["h04"].Ready && now["h01"].Ready && now["h01"].Epoch != before["h01"].Epoch &&
			now["h02"].Epoch == before["h02"].Epoch
	})
	if _, err := cluster.CallFunc(ctx, tc.client, "h00", pid, struct{}{}); !errors.Is(err, cluster.ErrNoOwner) {
		t.Errorf("call to the removed host: %v, want ErrNoOwner", err)
	}
	mustAllSucceed(t, "edited", round(ctx, tc.client, []string{"h01", "h02", "h03", "h04"}, "edited", filepath.Join(t.TempDir(), "calls")))
	// The removed host's context has exited.
	deadline := time.Now().Add(60 * time.Second)
	for processLive(gone) {
		if time.Now().After(deadline) {
			t.Fatalf("the context of the removed host (pid %d) still runs after 60s", gone)
		}
		time.Sleep(50 * time.Millisecond) // polling /proc, bounded by the deadline
	}
}

// processLive reports whether pid runs (a zombie does not).
func processLive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
