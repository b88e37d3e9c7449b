// Command wanrelay is a TCP relay on the loopback that fakes a wide-area
// link in front of a server (the peer benchmarks' sshd): each direction is
// delayed and rate-capped (package ../internal/wanrelay).
//
//	go build -o /tmp/wanrelay ./test/peer/wanrelay
//	/tmp/wanrelay -to 127.0.0.1:PORT [-listen 127.0.0.1:0] [-delay 20ms] [-rate 20]
//	              [-stats FILE] [-max 30m]
//
// It prints the address it listens on as one line on stdout, then relays
// until SIGINT or SIGTERM, until -max has passed, or until its parent
// exits (checked twice a second), whichever comes first; it never outlives
// the script that started it by more than that. With -stats it keeps FILE
// at the counts so far as JSON: {"open":N,"closed":N,"up_bytes":N,
// "down_bytes":N}, bytes per direction (up: client to target), added when a
// connection closes.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/test/peer/internal/wanrelay"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	to := flag.String("to", "", "address to forward to (required)")
	delay := flag.Duration("delay", 20*time.Millisecond, "delay of each direction (the round trip is twice this)")
	rate := flag.Float64("rate", 20, "cap of each direction in Mbit/s (0: none)")
	burst := flag.Int("burst", 16<<10, "bytes the rate lets through at once")
	queue := flag.Int("queue", 256<<10, "bytes queued per direction before the relay stops reading")
	stats := flag.String("stats", "", "file to keep the byte counts in, as JSON")
	maxAge := flag.Duration("max", 30*time.Minute, "stop after this long")
	flag.Parse()
	if *to == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	r, err := wanrelay.Listen(wanrelay.Config{
		Listen: *listen, Target: *to, Delay: *delay, Rate: *rate * 1e6,
		Burst: *burst, Queue: *queue, StatsFile: *stats,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanrelay:", err)
		os.Exit(1)
	}
	fmt.Println(r.Addr())

	served := make(chan error, 1)
	go func() { served <- r.Serve() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	parent := os.Getppid()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(*maxAge)
	for stop := false; !stop; {
		select {
		case <-sig:
			stop = true
		case <-deadline:
			fmt.Fprintln(os.Stderr, "wanrelay: -max reached; stopping")
			stop = true
		case <-tick.C:
			stop = os.Getppid() != parent
		case err := <-served:
			fmt.Fprintln(os.Stderr, "wanrelay:", err)
			os.Exit(1)
		}
	}
	r.Close()
	<-served
	s := r.Stats()
	fmt.Fprintf(os.Stderr, "wanrelay: %d connections, %d bytes up, %d bytes down\n", s.Closed, s.Up, s.Down)
}
