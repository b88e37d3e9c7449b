package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// heartbeatFlag is --heartbeat INTERVAL[,MISSES] or off.
type heartbeatFlag struct {
	set      bool
	interval time.Duration // < 0: off
	misses   int           // 0: the default
}

func (h *heartbeatFlag) String() string {
	switch {
	case h == nil || !h.set:
		return ""
	case h.interval < 0:
		return "off"
	case h.misses > 0:
		return fmt.Sprintf("%v,%d", h.interval, h.misses)
	}
	return h.interval.String()
}

func (h *heartbeatFlag) Set(s string) error {
	if s == "off" {
		*h = heartbeatFlag{set: true, interval: -1}
		return nil
	}
	iv, n, hasMisses := strings.Cut(s, ",")
	d, err := time.ParseDuration(iv)
	if err != nil || d <= 0 {
		return fmt.Errorf("want INTERVAL[,MISSES] or off, e.g. 5s or 5s,4; got %q", s)
	}
	misses := 0
	if hasMisses {
		if misses, err = strconv.Atoi(n); err != nil || misses <= 0 {
			return fmt.Errorf("want a positive number of misses after the comma, e.g. 5s,4; got %q", s)
		}
	}
	*h = heartbeatFlag{set: true, interval: d, misses: misses}
	return nil
}

// options returns the connection option the flag asks for, if any.
func (h *heartbeatFlag) options() []actors.ConnectOption {
	if !h.set {
		return nil
	}
	return []actors.ConnectOption{actors.Heartbeat(h.interval, h.misses)}
}

const heartbeatUsage = "watch each hop's mitogo process with pings inside the stream: `INTERVAL[,MISSES]`, e.g. 5s,4 " +
	"(a hop that answers none of 4 pings sent 5s apart is declared dead and what waits on it fails), or off. " +
	"Default 10s,3 for ssh and openssh hops, off for the others. Unlike SSH keepalives, which sshd answers, " +
	"this notices a stopped or hung process behind a live sshd"
