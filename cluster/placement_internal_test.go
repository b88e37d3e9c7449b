package cluster

import (
	"fmt"
	"testing"
)

// Placement shares hosts evenly among members whatever their names,
// including names that differ only in their last character (a, b, c;
// c1, c2, c3): each member's share of 1,000 hosts is within 20% of an
// even share.
func TestPreferredEven(t *testing.T) {
	hostSets := map[string][]string{}
	for i := range 1000 {
		hostSets["h%03d"] = append(hostSets["h%03d"], fmt.Sprintf("h%03d", i))
		hostSets["web%d"] = append(hostSets["web%d"], fmt.Sprintf("web%d", i+1))
	}
	for _, members := range [][]string{{"a", "b", "c"}, {"a", "c", "d"}, {"c1", "c2", "c3"}, {"a", "b", "c", "d"}} {
		for pattern, hosts := range hostSets {
			n := map[string]int{}
			for _, h := range hosts {
				n[preferred(h, members)]++
			}
			even := float64(len(hosts)) / float64(len(members))
			for _, m := range members {
				if got := float64(n[m]); got < 0.8*even || got > 1.2*even {
					t.Errorf("members %v, hosts %s: %s has %d hosts, want %.0f±20%% (%v)", members, pattern, m, n[m], even, n)
				}
			}
		}
	}
}

// The placement of a host does not depend on the order members are
// listed in.
func TestPreferredOrder(t *testing.T) {
	for i := range 200 {
		h := fmt.Sprintf("web%d", i)
		if a, b := preferred(h, []string{"a", "b", "c"}), preferred(h, []string{"c", "a", "b"}); a != b {
			t.Errorf("%s: %s or %s depending on the members' order", h, a, b)
		}
	}
}
