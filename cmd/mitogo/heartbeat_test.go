package main

import (
	"testing"
	"time"
)

func TestHeartbeatFlag(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   heartbeatFlag
		errors bool
	}{
		{in: "5s", want: heartbeatFlag{set: true, interval: 5 * time.Second}},
		{in: "200ms,4", want: heartbeatFlag{set: true, interval: 200 * time.Millisecond, misses: 4}},
		{in: "off", want: heartbeatFlag{set: true, interval: -1}},
		{in: "0s", errors: true},
		{in: "-1s", errors: true},
		{in: "5", errors: true},
		{in: "5s,0", errors: true},
		{in: "5s,x", errors: true},
		{in: "", errors: true},
	} {
		var h heartbeatFlag
		err := h.Set(tc.in)
		if tc.errors {
			if err == nil {
				t.Errorf("--heartbeat %q accepted as %+v", tc.in, h)
			}
			continue
		}
		if err != nil || h != tc.want || len(h.options()) != 1 {
			t.Errorf("--heartbeat %q: %+v, %v; want %+v", tc.in, h, err, tc.want)
		}
		var again heartbeatFlag
		if err := again.Set(h.String()); err != nil || again != h {
			t.Errorf("--heartbeat %q prints as %q, which reads back as %+v, %v", tc.in, h.String(), again, err)
		}
	}
	var unset heartbeatFlag
	if unset.options() != nil {
		t.Error("no --heartbeat: want the methods' defaults, got an option")
	}
}
