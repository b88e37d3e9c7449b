package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster/natsembed"
)

// mitogo serve started before its NATS server (a start-up order, after a
// reboot) says once that nothing answers, waits, and joins once the
// server is up, rather than exiting.
func TestServeWaitsForNATS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // free again: serve finds nothing there
	raw := make([]byte, 8)
	rand.Read(raw)
	token, name := hex.EncodeToString(raw), "sw"+hex.EncodeToString(raw[:3])
	t.Cleanup(func() {
		home, _ := os.UserHomeDir()
		os.RemoveAll(filepath.Join(home, ".cache", "mitogo-cluster", name))
	})
	inv := writeInventory(t, "h local")
	cmd := exec.Command(bin, "serve", "--cluster", name, "--nats", "nats://127.0.0.1:"+strconv.Itoa(port), "-i", inv, "--id", "a", "--lease-ttl", "3s")
	cmd.Env = append(os.Environ(), "MITOGO_NATS_TOKEN="+token)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		done := make(chan struct{})
		go func() {
			for range lines { // what it says as it stops
			}
			cmd.Wait()
			close(done)
		}()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Error("mitogo serve did not stop within 30s of SIGTERM")
		}
	}()
	wait := func(what string) {
		t.Helper()
		guard := time.After(60 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("mitogo serve ended before it said %q", what)
				}
				t.Log(l)
				if strings.Contains(l, what) {
					return
				}
			case <-guard:
				t.Fatalf("mitogo serve did not say %q within 60s", what)
			}
		}
	}
	wait("nothing answers at nats://127.0.0.1:" + strconv.Itoa(port))
	srv, err := natsembed.Start(natsembed.Options{Token: token, Port: port, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	wait("mitogo serve: member a of cluster " + name)
}
