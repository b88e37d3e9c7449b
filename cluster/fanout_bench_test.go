package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkFanOut times one call fanned out to 200 hosts through the
// cluster (Client.Fan, all at once, until the last result), with the
// hosts spread over three controller processes and with all of them on
// one. Run it with BenchmarkDispatch, the latency of one call through the
// cluster against a direct call, to have both in the same run:
//
//	go test -run '^$' -bench 'Dispatch|FanOut' -benchtime 20x ./cluster/
//
// It reports and asserts nothing about speed.
func BenchmarkFanOut(b *testing.B) {
	const nHosts = 200
	var inv strings.Builder
	var hosts []string
	for i := range nHosts {
		name := fmt.Sprintf("h%03d", i)
		hosts = append(hosts, name)
		fmt.Fprintf(&inv, "%s local\n", name)
	}
	args, err := msgpack.Marshal(1)
	if err != nil {
		b.Fatal(err)
	}
	for _, ids := range [][]string{{"a", "b", "c"}, {"a"}} {
		b.Run(fmt.Sprintf("controllers=%d", len(ids)), func(b *testing.B) {
			tc := newTestCluster(b, inv.String(), 10*time.Second)
			tc.start(ids...)
			tc.waitLeases(hosts, ids...)
			ctx := context.Background()
			for b.Loop() {
				for res := range tc.client.Fan(ctx, hosts, echo.Name(), args, 0) {
					if res.Err != nil {
						b.Fatal(res.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/nHosts, "µs/host")
		})
	}
}
