package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/builtins"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsProc is a mitogo-nats process started by a test.
type natsProc struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// buildMitogoNATS builds the mitogo-nats command into dir.
func buildMitogoNATS(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mitogo-nats")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mitogo/mitogo/cmd/mitogo-nats").CombinedOutput()
	if err != nil {
		t.Fatalf("building mitogo-nats: %v\n%s", err, out)
	}
	return bin
}

// freePorts returns n distinct ports that were free a moment ago on
// 127.0.0.1: the route ports must be known before the servers that
// listen on them start.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// newRoutedCluster starts n mitogo-nats processes given each other as
// routes, a routed JetStream cluster, and waits until it can hold a
// bucket with n replicas. The cluster's buckets get n replicas, and the
// i-th member started goes to the i-th server (see start).
func newRoutedCluster(t *testing.T, inventory string, ttl time.Duration, ids ...string) (*testCluster, map[string]*natsProc) {
	t.Helper()
	tc := &testCluster{t: t, name: "t" + randHex(4), token: randHex(16), ttl: ttl, replicas: len(ids),
		members: map[string]*member{}, via: map[string]string{}}
	dir := t.TempDir()
	bin := buildMitogoNATS(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tc.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, p := range freePorts(t, len(ids)) {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	servers := map[string]*natsProc{}
	var urls []string
	for i, id := range ids {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		np := &natsProc{name: "n" + id, done: make(chan struct{})}
		np.cmd = exec.Command(bin, "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, np.name), "--token-file", tokenFile,
			"--name", np.name, "--cluster-listen", strings.TrimPrefix(routes[i], "nats-route://"), "--routes", strings.Join(others, ","))
		stderr, _ := np.cmd.StderrPipe()
		if err := np.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan string, 1)
		go func() {
			br := bufio.NewReader(stderr)
			line, _ := br.ReadString('\n')
			ready <- line
			io.Copy(&prefixed{prefix: np.name, t: t}, br)
			np.cmd.Wait()
			close(np.done)
		}()
		t.Cleanup(func() {
			np.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-np.done:
			case <-time.After(30 * time.Second):
				np.cmd.Process.Kill()
				<-np.done
			}
		})
		select {
		case line := <-ready:
			// "mitogo-nats: listening on nats://127.0.0.1:PORT (token in FILE)"
			f := strings.Fields(line)
			if len(f) < 4 || f[1] != "listening" {
				t.Fatalf("%s: %q", np.name, line)
			}
			np.url = f[3]
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: not listening after 60s", np.name)
		}
		servers[id] = np
		urls = append(urls, np.url)
		tc.via[id] = np.url
	}
	tc.url = strings.Join(urls, ",")
	waitJetStream(t, tc.url, tc.token, len(ids))
	tc.setUp(inventory)
	return tc, servers
}

// waitJetStream waits until the routed cluster can create a bucket with
// replicas replicas: its servers found each other and elected a leader.
func waitJetStream(t *testing.T, url, token string, replicas int) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "probe", Replicas: replicas})
		if err == nil {
			err = js.DeleteKeyValue(ctx, "probe")
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routed JetStream cluster holds no bucket of %d replicas after 90s: %v", replicas, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the cluster, bounded by the deadline
	}
}

// The routed multi-server topology: three mitogo-nats processes form a
// routed JetStream cluster (the buckets with three replicas), three
// controllers each on its own server. One server and its controller are
// killed with SIGKILL together: the other two keep dispatching, take the
// dead controller's hosts over, and no call runs twice or under the dead
// controller.
func TestRoutedCluster(t *testing.T) {
	const nHosts = 9
	var inv strings.Builder
	var hosts []string
	for i := range nHosts {
		name := fmt.Sprintf("h%02d", i)
		hosts = append(hosts, name)
		fmt.Fprintf(&inv, "%s local\n", name)
	}
	ids := []string{"a", "b", "c"}
	tc, servers := newRoutedCluster(t, inv.String(), 3*time.Second, ids...)
	tc.start(ids...) // at once, as on three machines
	owners := tc.waitLeases(hosts, ids...)
	log := filepath.Join(t.TempDir(), "calls")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mustAllSucceed(t, "r1", round(ctx, tc.client, hosts, "r1", log))

	victim := owners[hosts[0]]
	var survivors []string
	for _, id := range ids {
		if id != victim {
			survivors = append(survivors, id)
		}
	}
	bg := startCaller(tc.client, hosts, log, 3)
	vm, vs := tc.members[victim], servers[victim]
	killed := time.Now()
	vs.cmd.Process.Kill() // SIGKILL, the server and its controller
	vm.cmd.Process.Kill()
	<-vs.done
	<-vm.done
	after := tc.waitLeases(hosts, survivors...)
	t.Logf("server n%s and controller %s killed: all %d hosts held by %v after %v", victim, victim, len(hosts), survivors, time.Since(killed).Round(time.Millisecond))
	for h, o := range owners {
		if o == victim && after[h] == victim {
			t.Errorf("host %s still held by the killed controller", h)
		}
	}
	checkOutcomes(t, log, bg.stop())

	// The survivors keep dispatching: a round over every host succeeds
	// whole. A lease renewal that failed while the bucket's replicas
	// elected a new leader moves a host once more, so a round may meet a
	// host between owners: its call fails saying it did not run (checked)
	// and the round is run again, until the deadline.
	var last map[string]error
	for n := 0; ; n++ {
		tc.waitLeases(hosts, survivors...)
		last = round(ctx, tc.client, hosts, fmt.Sprintf("r2.%d", n), log)
		failed := 0
		for _, err := range last {
			if err != nil {
				failed++
			}
		}
		checkOutcomes(t, log, last)
		if failed == 0 || ctx.Err() != nil {
			break
		}
		t.Logf("round r2.%d: %d of %d calls did not run; again", n, failed, len(hosts))
	}
	mustAllSucceed(t, "r2", last)
	_, under := runs(t, log)
	victimPID := fmt.Sprint(vm.cmd.Process.Pid)
	for id, pid := range under {
		if strings.HasPrefix(id, "r2.") && pid == victimPID {
			t.Errorf("call %s ran under the killed controller", id)
		}
	}

	// A streamed run through a surviving server.
	var out bytes.Buffer
	exit, err := tc.client.Run(ctx, hosts[0], builtins.RunRequest{Argv: []string{"echo", "still here"}}, nil, &out, io.Discard)
	if err != nil || exit != 0 || out.String() != "still here\n" {
		t.Fatalf("run on %s after the kill: exit %d, output %q, %v", hosts[0], exit, out.String(), err)
	}
}
