package wanrelay

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers each connection with what it read, after the client's
// half-close, then closes; it returns the address and a stop function.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				data, err := io.ReadAll(c)
				if err == nil {
					c.Write(data)
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func startRelay(t *testing.T, cfg Config) *Relay {
	t.Helper()
	r, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve() }()
	t.Cleanup(func() {
		r.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v, want ErrClosed", err)
		}
	})
	return r
}

// roundTrip sends data through the relay to the echo server, half-closes
// and returns what came back.
func roundTrip(t *testing.T, addr string, data []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second)) // guards against a hang only
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRelayCarriesBytes(t *testing.T) {
	echo := echoServer(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		size int
	}{
		{"plain", Config{}, 3 << 20},
		{"delayed and capped", Config{Delay: time.Millisecond, Rate: 2e9}, 3 << 20},
		{"small queue and burst", Config{Delay: time.Millisecond, Rate: 1e9, Burst: 1000, Queue: 1}, 1 << 20},
		{"empty", Config{Delay: time.Millisecond}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := filepath.Join(t.TempDir(), "stats.json")
			tc.cfg.Listen, tc.cfg.Target, tc.cfg.StatsFile = "127.0.0.1:0", echo, stats
			r := startRelay(t, tc.cfg)
			data := make([]byte, tc.size)
			rand.Read(data)
			var wg sync.WaitGroup
			for range 3 { // connections at once stay apart
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := roundTrip(t, r.Addr().String(), data); !bytes.Equal(got, data) {
						t.Errorf("got %d bytes back, want the %d sent", len(got), len(data))
					}
				}()
			}
			wg.Wait()
			// The client has everything; the relay counts the connection
			// once both of its directions ended, which Close waits for.
			r.Close()
			want := Stats{Closed: 3, Up: 3 * int64(tc.size), Down: 3 * int64(tc.size)}
			waitStats(t, r, want)
			raw, err := os.ReadFile(stats)
			if err != nil {
				t.Fatal(err)
			}
			var fromFile Stats
			if err := json.Unmarshal(raw, &fromFile); err != nil || fromFile != want {
				t.Errorf("stats file %s: %+v (%v), want %+v", raw, fromFile, err, want)
			}
		})
	}
}

// waitStats waits (bounded) for the relay's goroutines to have counted.
func waitStats(t *testing.T, r *Relay, want Stats) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Stats() != want {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", r.Stats(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCloseCutsOpenConnections(t *testing.T) {
	echo := echoServer(t)
	r := startRelay(t, Config{Listen: "127.0.0.1:0", Target: echo, Delay: time.Hour})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("held for an hour"))
	c.(*net.TCPConn).CloseWrite()
	waitOpen(t, r, 1)
	r.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got, _ := io.ReadAll(c)
	if len(got) != 0 {
		t.Errorf("got %q from a connection cut while its bytes were delayed", got)
	}
}

func waitOpen(t *testing.T, r *Relay, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.Stats().Open != n {
		if time.Now().After(deadline) {
			t.Fatalf("open %d, want %d", r.Stats().Open, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	r := startRelay(t, Config{Listen: "127.0.0.1:0", Target: dead})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if got, err := io.ReadAll(c); len(got) != 0 || err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %q, %v; want the connection closed", got, err)
	}
}

func TestBucketDepartures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	b := newBucket(1e6, 1000, t0) // 1 MB/s: 1 byte per µs; 1000 bytes of burst
	for i, step := range []struct {
		n    int
		now  time.Time
		want time.Time
	}{
		{1000, t0, t0},          // the burst goes at once
		{1000, t0, ms(1)},       // then 1000 bytes take 1 ms
		{500, ms(0.5), ms(1.5)}, // queued behind the last: no refill before it left
		{2000, ms(10), ms(11)},  // idle long enough to refill the burst (1000), then 1000 more
		{100, ms(11), ms(11.1)}, // back to back
		{0, ms(20), ms(20)},     // nothing needs no tokens
	} {
		if got := b.depart(step.n, step.now); !got.Equal(step.want) {
			t.Errorf("step %d: depart(%d, %v) = %v, want %v", i, step.n, step.now.Sub(t0), got.Sub(t0), step.want.Sub(t0))
		}
	}
	if got := newBucket(0, 0, t0).depart(1<<30, ms(5)); !got.Equal(ms(5)) {
		t.Errorf("no rate: departs at %v, want at once", got.Sub(t0))
	}
}

// The stats file is there before the first connection, with zero counts:
// a client reads it before connecting, to subtract it from the counts after
// (a benchmark run alone, whose first step is a connection, found none).
func TestStatsFileBeforeAnyConnection(t *testing.T) {
	stats := filepath.Join(t.TempDir(), "stats.json")
	startRelay(t, Config{Listen: "127.0.0.1:0", Target: echoServer(t), StatsFile: stats})
	raw, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	var got Stats
	if err := json.Unmarshal(raw, &got); err != nil || got != (Stats{}) {
		t.Errorf("stats file %s: %+v (%v), want zero counts", raw, got, err)
	}
	if _, err := Listen(Config{Listen: "127.0.0.1:0", Target: "127.0.0.1:1", StatsFile: filepath.Join(stats, "x")}); err == nil {
		t.Error("Listen with a stats file it cannot write: no error")
	}
}
