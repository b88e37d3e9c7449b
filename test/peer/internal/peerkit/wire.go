package peerkit

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// WireStatsEnv names the stats file of the WAN relay (../../wanrelay) that
// the connections of a run go through, when they do.
const WireStatsEnv = "PEER_WAN_STATS"

// Wire is the relay's byte counts: Up from the client, Down to it.
type Wire struct {
	Open   int   `json:"open"`
	Closed int   `json:"closed"`
	Up     int64 `json:"up_bytes"`
	Down   int64 `json:"down_bytes"`
}

// ReadWire returns the WAN relay's counts once no connection is open (it
// counts a connection when it closes), waiting up to 10 s; ok is false when
// there is no relay ($PEER_WAN_STATS unset).
func ReadWire() (w Wire, ok bool) {
	path := os.Getenv(WireStatsEnv)
	if path == "" {
		return Wire{}, false
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &w)
		}
		if err == nil && w.Open == 0 {
			return w, true
		}
		if time.Now().After(deadline) {
			Must(fmt.Errorf("WAN relay stats %s: %v, %d connections still open", path, err, w.Open))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PutWire sets KEY_wire_up_bytes and KEY_wire_down_bytes to what the relay
// carried per connection between before and now (n connections), when
// there is a relay.
func PutWire(res Result, key string, before Wire, n int) {
	after, ok := ReadWire()
	if !ok || n == 0 {
		return
	}
	res[key+"_wire_up_bytes"] = (after.Up - before.Up) / int64(n)
	res[key+"_wire_down_bytes"] = (after.Down - before.Down) / int64(n)
	res[key+"_wire_conns"] = after.Closed - before.Closed
}
