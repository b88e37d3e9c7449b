package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
)

// cluster status lists the hosts whose last connect failed: when, by
// which member, and why.
func TestPrintStatusConnectErrors(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &cluster.Status{Cluster: "ops", Members: []cluster.Member{{ID: "d"}},
		ConnectErrors: []cluster.ConnectError{{Host: "bad1", Member: "d", Error: "sudo to nosuchuser: user unknown", At: now.Add(-2 * time.Second)}}}
	var out bytes.Buffer
	printStatus(&env{stdout: &out}, st, now)
	var line string
	for l := range strings.Lines(out.String()) {
		if strings.HasPrefix(l, "bad1") {
			line = l
		}
	}
	for _, want := range []string{"2s ago", " d ", "sudo to nosuchuser: user unknown"} {
		if !strings.Contains(line, want) {
			t.Errorf("status line of bad1 %q: want %q in it; status:\n%s", line, want, out.String())
		}
	}
}
