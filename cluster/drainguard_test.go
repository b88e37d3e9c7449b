package cluster_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mitogo/mitogo/cluster"
)

// Draining the only active member is refused: its hosts would be released
// with no member to take them. It keeps them, under the same leases.
func TestDrainLastMember(t *testing.T) {
	inv, hosts := localInventory(3)
	tc := newTestCluster(t, inv, testTTL)
	tc.start("a")
	tc.waitLeases(hosts, "a")
	before := tc.leases()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	moves, err := tc.client.Drain(ctx, "a", cluster.HandoverOptions{})
	if !errors.Is(err, cluster.ErrLastMember) {
		t.Fatalf("drain of the only member: moves %+v, error %v; want ErrLastMember", moves, err)
	}
	for h, l := range tc.leases() {
		if !sameLease(l, before[h]) {
			t.Errorf("host %s: lease %+v after the refused drain, was %+v", h, l, before[h])
		}
	}
	for _, m := range tc.status().Members {
		if m.Draining {
			t.Errorf("member %s is draining after a refused drain", m.ID)
		}
	}
}
