package cluster

import (
	"fmt"
	"testing"
)

// A rebalance plan moves at most a batch, each host to its preferred
// member, only while that narrows the gap, and nothing from or to a
// draining member.
func TestPlanRebalance(t *testing.T) {
	st := &Status{Members: []Member{{ID: "a"}, {ID: "b"}, {ID: "d", Draining: true}}}
	for i := range 20 {
		st.Leases = append(st.Leases, LeaseInfo{Host: fmt.Sprintf("h%02d", i), Owner: "a", Ready: true})
	}
	plan := planRebalance(st, 3)
	if len(plan) != 3 {
		t.Fatalf("plan %v: want a batch of 3", plan)
	}
	for _, mv := range plan {
		if mv.From != "a" || mv.To != "b" || preferred(mv.Host, []string{"a", "b"}) != "b" {
			t.Errorf("move %+v: want a host that prefers b, from a to b", mv)
		}
	}
	// Applied in full, the plans converge: every host that prefers b is
	// on b unless b would then hold more than a, and a second plan is
	// empty.
	owner := map[string]string{}
	for _, l := range st.Leases {
		owner[l.Host] = l.Owner
	}
	for range 20 {
		plan := planRebalance(st, 3)
		if len(plan) == 0 {
			break
		}
		for _, mv := range plan {
			owner[mv.Host] = mv.To
		}
		for i := range st.Leases {
			st.Leases[i].Owner = owner[st.Leases[i].Host]
		}
	}
	n := map[string]int{}
	for _, o := range owner {
		n[o]++
	}
	if n["b"] == 0 || n["d"] != 0 || n["b"]-n["a"] > 1 {
		t.Errorf("after rebalancing, hosts per member %v", n)
	}
	if plan := planRebalance(st, 3); len(plan) != 0 {
		t.Errorf("a balanced cluster still plans %v", plan)
	}
	// One live member: nothing to move.
	if plan := planRebalance(&Status{Members: []Member{{ID: "a"}, {ID: "d", Draining: true}}, Leases: st.Leases}, 3); len(plan) != 0 {
		t.Errorf("one live member plans %v", plan)
	}
}
