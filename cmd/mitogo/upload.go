package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// uploadLine shows on a terminal how far sending mitogo to a far side that
// lacks it has come: one line on stderr, "sending mitogo to NAME: 1.2 MiB
// of 4.9 MiB, 2.3 MiB/s, 2s left", redrawn at most ten times a second and
// erased when the upload ends. With many targets a fleet's progress line
// takes the reports instead (see setFleet).
type uploadLine struct {
	w     io.Writer
	mu    sync.Mutex
	last  time.Time
	drawn bool
	fleet func(actors.UploadProgress) // the fleet's progress line, when there is one
}

// setFleet sends the reports to fn from now on.
func (u *uploadLine) setFleet(fn func(actors.UploadProgress)) {
	u.mu.Lock()
	u.fleet = fn
	u.mu.Unlock()
}

func (u *uploadLine) report(p actors.UploadProgress) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fleet != nil {
		u.fleet(p)
		return
	}
	if p.Done {
		if u.drawn {
			io.WriteString(u.w, "\r\x1b[K")
			u.drawn = false
		}
		return
	}
	if now := time.Now(); now.Sub(u.last) >= 100*time.Millisecond {
		u.last = now
		io.WriteString(u.w, "\r\x1b[K"+uploadText(p))
		u.drawn = true
	}
}

// uploadText is "sending mitogo to NAME: SENT of TOTAL, RATE, ETA left".
func uploadText(p actors.UploadProgress) string {
	s := fmt.Sprintf("sending mitogo to %s: %s of %s", p.Context, size(p.Sent), size(p.Total))
	if secs := p.Elapsed.Seconds(); secs > 0.2 && p.Sent > 0 {
		rate := float64(p.Sent) / secs
		left := time.Duration(float64(p.Total-p.Sent) / rate * float64(time.Second))
		s += fmt.Sprintf(", %s/s, %s left", size(int64(rate)), left.Round(100*time.Millisecond))
	}
	return s
}

// uploadsText lists the uploads in flight for a fleet's progress line:
// "sending mitogo: web1 40%, web2 12%".
func uploadsText(uploads map[string]actors.UploadProgress) string {
	if len(uploads) == 0 {
		return ""
	}
	var parts []string
	for name, p := range uploads {
		pct := 0
		if p.Total > 0 {
			pct = int(100 * p.Sent / p.Total)
		}
		parts = append(parts, fmt.Sprintf("%s %d%%", name, pct))
	}
	sort.Strings(parts)
	return "sending mitogo: " + strings.Join(parts, ", ")
}
