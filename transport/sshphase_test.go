package transport

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mitogo/mitogo/test/sshtest"
)

// stuckServer is an SSH server on 127.0.0.1 that stops at one step: after
// its banner (kex), in authentication (auth), or after it (session: it
// never answers a channel open). Its goroutines end at the test's cleanup.
func stuckServer(t *testing.T, at string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, sk, _ := ed25519.GenerateKey(nil)
	hostKey, err := ssh.NewSignerFromKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	cfg := &ssh.ServerConfig{PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
		if at == "auth" {
			<-release
			return nil, errors.New("released")
		}
		return nil, nil
	}}
	cfg.AddHostKey(hostKey)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if at == "kex" {
				c.Write([]byte("SSH-2.0-stuck\r\n"))
				continue
			}
			wg.Go(func() {
				sc, _, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				// The channel opens are never read: the server's
				// connection stops there.
				for range reqs {
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		close(release)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// A connect that times out says the step it reached, and the steps done
// were reported as each completed: a log of a hang ends with the last.
func TestSSHTimeoutSaysWhereItStopped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addr  func(t *testing.T) string
		phase string
		done  []string
	}{
		{"silent listener", func(t *testing.T) string { return sshtest.Silent(t) }, PhaseBanner, []string{"tcp"}},
		{"banner only", func(t *testing.T) string { return stuckServer(t, "kex") }, PhaseKex, []string{"tcp"}},
		{"authentication never answered", func(t *testing.T) string { return stuckServer(t, "auth") }, PhaseAuth, []string{"tcp", "ssh_handshake"}},
		{"session never opened", func(t *testing.T) string { return stuckServer(t, "session") }, PhaseSession, []string{"tcp", "ssh_handshake", "auth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host, port, _ := net.SplitHostPort(tc.addr(t))
			p, _ := strconv.Atoi(port)
			spec := SSHSpec{Host: host, Port: p, User: "nobody", Password: "pw", HostKeyPolicy: HostKeyIgnore, NoAgent: true,
				ConfigFile: "none"}
			var mu sync.Mutex
			var done []string
			// The deadline is what is tested; it is far beyond what each
			// step before the stuck one takes on loopback.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			child, err := StartSSH(ctx, spec, "true", nil, func(ph Phase) {
				mu.Lock()
				done = append(done, ph.Name)
				mu.Unlock()
			})
			if err == nil {
				child.Conn.Close()
				<-child.Proc.Done()
				t.Fatal("connected")
			}
			var se *StalledError
			if !errors.As(err, &se) || se.Phase != tc.phase || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%T %v; want a *StalledError in %q", err, err, tc.phase)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(done, tc.done) {
				t.Errorf("steps reported %q, want %q", done, tc.done)
			}
		})
	}
}
