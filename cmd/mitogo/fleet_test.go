package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/mitogo/mitogo/test/sshtest"
)

// record is one line of --json output.
type record struct {
	Target       string         `json:"target"`
	Stream       string         `json:"stream"`
	Data         *string        `json:"data"`
	Result       map[string]any `json:"result"`
	Status       string         `json:"status"`
	Exit         *int           `json:"exit"`
	Started      *bool          `json:"started"`
	Error        string         `json:"error"`
	HostKeyAdded *struct {
		Host, Fingerprint string
	} `json:"host_key_added"`
}

// parseJSONLines parses --json output: every line must be one object.
func parseJSONLines(t *testing.T, out string) []record {
	t.Helper()
	var recs []record
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Target == "" {
			t.Fatalf("--json line %q: %v (or no target)", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// statuses maps each target to its final status record.
func statuses(t *testing.T, recs []record) map[string]record {
	t.Helper()
	out := map[string]record{}
	for _, r := range recs {
		if r.Status != "" {
			if _, dup := out[r.Target]; dup {
				t.Errorf("target %s has two status records", r.Target)
			}
			out[r.Target] = r
		}
	}
	return out
}

// writeInventory writes lines to a file and returns its path.
func writeInventory(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hosts.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// localInventory has n local targets l01... in the group [locals].
func localInventory(n int) []string {
	lines := []string{"# n local children", "[locals]"}
	for i := 1; i <= n; i++ {
		lines = append(lines, fmt.Sprintf("l%02d local", i))
	}
	return lines
}

// 30 local targets, two over the real sshd (one recording its host key
// with accept-new), one refused and one that never answers: every target
// reports, prefixed and aligned; the unreachable make the exit 255; the
// retry file lists them and -i runs again in them only.
func TestFleetInventory(t *testing.T) {
	s := sshtest.Start(t)
	fresh := filepath.Join(t.TempDir(), "known_hosts")
	lines := append(localInventory(30),
		"[remote]",
		fmt.Sprintf("ssh1 %s@%s identity=%s known-hosts=%s", s.User, s.Addr, s.ClientKey, s.KnownHosts),
		fmt.Sprintf("ssh2 %s port=%d user=%s identity=%s known-hosts=%s host-key-policy=accept-new", s.Host, s.Port, s.User, s.ClientKey, fresh),
		"down "+sshtest.ClosedPort(t),
		"hung "+sshtest.Silent(t)+" connect-timeout=2s",
	)
	inv := writeInventory(t, lines...)
	retry := filepath.Join(t.TempDir(), "retry.txt")
	r := mitogo(t, "", "run", "-i", inv, "--summary", "--retry-file", retry,
		"--", "sh", "-c", "echo out; echo err >&2")
	if r.exit != 255 {
		t.Errorf("exit %d; want 255 (targets unreachable)", r.exit)
	}
	var names []string
	for i := 1; i <= 30; i++ {
		names = append(names, fmt.Sprintf("l%02d", i))
	}
	names = append(names, "ssh1", "ssh2")
	for _, n := range names {
		prefix := n + strings.Repeat(" ", len("ssh1")-len(n)) + " | "
		if !strings.Contains(r.stdout, prefix+"out\n") || !strings.Contains(r.stderr, prefix+"err\n") {
			t.Errorf("no line %q on stdout and stderr", prefix+"out")
		}
	}
	for _, n := range []string{"down", "hung"} {
		if !strings.Contains(r.stderr, n+" | unreachable: ") {
			t.Errorf("stderr does not report %s unreachable", n)
		}
	}
	if !strings.Contains(r.stderr, "32 ok, 2 unreachable") {
		t.Errorf("summary lacks the counts 32 ok, 2 unreachable")
	}
	if !strings.Contains(r.stderr, "host keys added (accept-new):") || !strings.Contains(r.stderr, fmt.Sprintf("ssh2  [%s]:%d ssh-ed25519 SHA256:", s.Host, s.Port)) {
		t.Errorf("summary does not report ssh2's host key recorded")
	}
	if data, err := os.ReadFile(fresh); err != nil || !strings.Contains(string(data), "ssh-ed25519") {
		t.Errorf("accept-new recorded nothing in %s: %q %v", fresh, data, err)
	}
	data, err := os.ReadFile(retry)
	if err != nil {
		t.Fatal(err)
	}
	var retried []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(strings.SplitN(l, "#", 2)[0]); len(f) > 0 {
			retried = append(retried, f[0])
		}
	}
	if !slices.Equal(retried, []string{"down", "hung"}) {
		t.Errorf("retry file lists %q; want down and hung:\n%s", retried, data)
	}
	r = mitogo(t, "", "run", "-i", retry, "--json", "--", "true")
	st := statuses(t, parseJSONLines(t, r.stdout))
	if r.exit != 255 || len(st) != 2 || st["down"].Status != "unreachable" || st["hung"].Status != "unreachable" {
		t.Errorf("run -i RETRY-FILE: exit %d, statuses %v; want 255 and down, hung unreachable", r.exit, st)
	}
	// A bare user@host is an ssh target, without ssh://.
	r = mitogo(t, "", "run", "-t", s.User+"@"+s.Addr, "--identity", s.ClientKey, "--known-hosts", s.KnownHosts, "--", "echo", "bare")
	if r.exit != 0 || r.stdout != "bare\n" {
		t.Errorf("-t user@host:port: exit %d, stdout %q", r.exit, r.stdout)
	}
}

// --json gives one object per line, every target with its output and its
// status; a group picks targets; call gives each target's result.
func TestFleetJSON(t *testing.T) {
	inv := writeInventory(t, append(localInventory(5), "[other]", "x1 local,local", "l02", "down "+sshtest.ClosedPort(t))...)
	r := mitogo(t, "", "run", "-i", inv, "-t", "@locals", "-t", "other", "--json", "--", "echo", "hi")
	recs := parseJSONLines(t, r.stdout)
	st := statuses(t, recs)
	want := []string{"l01", "l02", "l03", "l04", "l05", "x1", "down"}
	if len(st) != len(want) || r.exit != 255 {
		t.Errorf("exit %d, %d statuses; want 255 and %d", r.exit, len(st), len(want))
	}
	for _, n := range want[:6] {
		if st[n].Status != "ok" || *st[n].Exit != 0 {
			t.Errorf("%s: %+v; want ok", n, st[n])
		}
		if !slices.ContainsFunc(recs, func(r record) bool {
			return r.Target == n && r.Stream == "stdout" && r.Data != nil && *r.Data == "hi\n"
		}) {
			t.Errorf("%s: no stdout record with hi", n)
		}
	}
	if d := st["down"]; d.Status != "unreachable" || *d.Exit != 255 || d.Error == "" {
		t.Errorf("down: %+v; want unreachable, 255 and an error", d)
	}
	if d := st["down"]; d.Started == nil || *d.Started {
		t.Errorf("down, never reached, says started %v; want false", d.Started)
	}
	if l := st["l01"]; l.Started == nil || !*l.Started {
		t.Errorf("l01, which ran, says started %v; want true", l.Started)
	}

	r = mitogo(t, "", "call", "-i", inv, "-t", "l01", "-t", "x1", "--json", "sys.facts")
	recs = parseJSONLines(t, r.stdout)
	got := map[string]string{}
	for _, rec := range recs {
		if rec.Result != nil {
			got[rec.Target], _ = rec.Result["context"].(string)
		}
	}
	// Targets connect in parallel, so which one is local.1 is not fixed:
	// l01 is a direct child, x1 a child of a child.
	if r.exit != 0 || !strings.HasPrefix(got["l01"], "local.") || strings.Contains(got["l01"], "/") ||
		!strings.HasPrefix(got["x1"], "local.") || !strings.Contains(got["x1"], "/") {
		t.Errorf("call --json: exit %d, contexts %v", r.exit, got)
	}
}

// A target named twice runs once, as --help says.
func TestFleetTargetTwice(t *testing.T) {
	r := mitogo(t, "", "run", "-t", "local", "-t", "local", "--json", "--", "echo", "hi")
	if st := statuses(t, parseJSONLines(t, r.stdout)); r.exit != 0 || len(st) != 1 || st["local"].Status != "ok" {
		t.Errorf("-t local -t local: exit %d, statuses %v; want one, ok", r.exit, st)
	}
	r = mitogo(t, "", "run", "--help")
	if !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "A target named twice (-t local -t local, -t web1 -t ssh://web1, or by a name and a group) runs once") {
		t.Errorf("run --help does not say a target named twice runs once")
	}
	// ssh:// written or not is the same hop, and so is a hop with spaces
	// around it; a chain that differs otherwise (another user, another
	// hop) is another target.
	for _, c := range []struct {
		targets []string
		want    int
	}{
		{[]string{"root@127.0.0.1:1", "ssh://root@127.0.0.1:1"}, 1},
		{[]string{"local,ssh://127.0.0.1:1", "local, 127.0.0.1:1"}, 1},
		{[]string{"root@127.0.0.1:1", "127.0.0.1:1"}, 2},
		{[]string{"local", "local,local"}, 2},
	} {
		var args []string
		for _, tg := range c.targets {
			args = append(args, "-t", tg)
		}
		r := mitogo(t, "", append(append([]string{"call", "--json"}, args...), "sys.facts")...)
		var ran []string
		for name := range statuses(t, parseJSONLines(t, r.stdout)) {
			ran = append(ran, name)
		}
		if len(ran) != c.want {
			t.Errorf("-t %q: ran in %q, want %d targets", c.targets, ran, c.want)
		}
	}
}

// --group prints each target's output whole under its header.
func TestFleetGroup(t *testing.T) {
	r := mitogo(t, "", "run", "-t", "local", "-t", "local,local", "--group", "--", "sh", "-c", "echo one; echo two; printf three")
	for _, n := range []string{"local", "local,local"} {
		block := fmt.Sprintf("=== %s: ok (", n)
		i := strings.Index(r.stdout, block)
		if i < 0 {
			t.Fatalf("no header for %s", n)
		}
		rest := r.stdout[i:]
		rest = rest[strings.Index(rest, "\n")+1:]
		if !strings.HasPrefix(rest, "one\ntwo\nthree\n") {
			t.Errorf("%s's block is not whole: %q", n, rest)
		}
	}
	if r.exit != 0 {
		t.Errorf("exit %d", r.exit)
	}
}

// --timeout ends the run: what still runs is killed and marked, what
// finished is reported as such, and the exit is 124.
func TestFleetTimeout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "first")
	// The first target to get here sleeps; the others finish at once.
	script := fmt.Sprintf("mkdir %s 2>/dev/null && exec sleep 60; echo done", dir)
	inv := writeInventory(t, localInventory(3)...)
	r := mitogo(t, "", "run", "-i", inv, "--timeout", "10s", "--json", "--shell", script)
	if r.exit != 124 {
		t.Errorf("exit %d; want 124", r.exit)
	}
	recs := parseJSONLines(t, r.stdout)
	st := statuses(t, recs)
	timedOut := 0
	for _, n := range []string{"l01", "l02", "l03"} {
		switch st[n].Status {
		case "timed out":
			timedOut++
		case "ok":
			if !slices.ContainsFunc(recs, func(r record) bool { return r.Target == n && r.Data != nil && *r.Data == "done\n" }) {
				t.Errorf("%s is ok without its output", n)
			}
		default:
			t.Errorf("%s: %+v; want ok or timed out", n, st[n])
		}
	}
	if timedOut == 0 {
		t.Errorf("no target timed out: %v", st)
	}
	// The first target ran its command when --timeout passed; another
	// may still have been connecting on a slow machine.
	running := 0
	for n, rec := range st {
		switch rec.Error {
		case "--timeout 10s passed (while running)":
			running++
		case "", "--timeout 10s passed (while connecting)":
		default:
			t.Errorf("%s: error %q; want --timeout 10s passed (while running)", n, rec.Error)
		}
	}
	if running == 0 {
		t.Errorf("no target reports --timeout 10s passed (while running): %v", st)
	}
}

// --timeout that passes while a target is connecting says so, rather than
// naming the per-hop connect timeout (30s) that never passed.
func TestFleetTimeoutConnecting(t *testing.T) {
	hung := "root@" + sshtest.Silent(t)
	r := mitogo(t, "", "run", "--timeout", "2s", "-t", hung, "--", "true")
	if want := "mitogo: " + hung + ": --timeout 2s passed (while connecting)\n"; r.exit != 124 || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want 124 and %q", r.exit, r.stderr, want)
	}
	r = mitogo(t, "", "run", "--timeout", "2s", "--json", "-t", hung, "-t", "local", "--", "true")
	st := statuses(t, parseJSONLines(t, r.stdout))
	if h := st[hung]; r.exit != 124 || h.Status != "timed out" || h.Error != "--timeout 2s passed (while connecting)" {
		t.Errorf("--json: exit %d, %s: %+v; want 124, timed out and --timeout 2s passed (while connecting)", r.exit, hung, h)
	}
	if h := st[hung]; h.Started == nil || *h.Started {
		t.Errorf("--json: %s never reached says started %v; want false", hung, h.Started)
	}
}

// Exit statuses: 127 for a missing command (or function, for call), with
// one target or many;
// else the highest status.
func TestFleetExitStatus(t *testing.T) {
	r := mitogo(t, "", "run", "--", "mitogo-no-such-command")
	if r.exit != 127 || !strings.Contains(r.stderr, "mitogo-no-such-command") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("one target: exit %d, stderr %q; want 127 and one line", r.exit, r.stderr)
	}
	r = mitogo(t, "", "run", "-t", "local", "-t", "local,local", "--", "/nonexistent-mitogo/prog")
	if r.exit != 127 || strings.Count(r.stderr, "not found: ") != 2 {
		t.Errorf("two targets: exit %d, stderr %q; want 127 and two lines", r.exit, r.stderr)
	}
	r = mitogo(t, "", "call", "-t", "local", "mitogo.no.such.function")
	if r.exit != 127 || !strings.Contains(r.stderr, "mitogo.no.such.function") {
		t.Errorf("call of an unknown function: exit %d, stderr %q; want 127", r.exit, r.stderr)
	}
	dir := filepath.Join(t.TempDir(), "first")
	r = mitogo(t, "", "run", "-t", "local", "-t", "local,local", "--shell", fmt.Sprintf("mkdir %s && exit 3; exit 5", dir))
	if r.exit != 5 {
		t.Errorf("statuses 3 and 5: exit %d; want the highest, 5", r.exit)
	}
}

// With many targets, one whose command fails says so on stderr, prefixed
// with its name as the unreachable ones are; --json has it in the data.
func TestFleetFailedLine(t *testing.T) {
	r := mitogo(t, "", "run", "-t", "local", "-t", "local,local", "--", "sh", "-c", "echo hi; exit 3")
	for _, want := range []string{"local       | failed, exit 3\n", "local,local | failed, exit 3\n"} {
		if r.exit != 3 || strings.Count(r.stderr, want) != 1 {
			t.Errorf("exit %d, stderr %q; want 3 and the line %q", r.exit, r.stderr, want)
		}
	}
	r = mitogo(t, "", "run", "-t", "local", "-t", "local,local", "--json", "--", "sh", "-c", "exit 3")
	if r.exit != 3 || r.stderr != "" {
		t.Errorf("--json: exit %d, stderr %q; want 3 and nothing", r.exit, r.stderr)
	}
}

// --shell runs a command line; argv, the default, runs a path with spaces.
func TestRunShell(t *testing.T) {
	r := mitogo(t, "", "run", "--shell", "-t", "local", "echo hi | tr a-z A-Z")
	if r.exit != 0 || r.stdout != "HI\n" {
		t.Errorf("--shell: exit %d, stdout %q", r.exit, r.stdout)
	}
	prog := filepath.Join(t.TempDir(), "dir with space", "prog")
	os.MkdirAll(filepath.Dir(prog), 0o755)
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho ran \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = mitogo(t, "", "run", "--", prog, "a b")
	if r.exit != 0 || r.stdout != "ran a b\n" {
		t.Errorf("argv with spaces: exit %d, stdout %q", r.exit, r.stdout)
	}
}

// Mistakes on the command line and in the inventory are usage errors
// (exit 2) on one line that says what to do.
func TestFleetUsage(t *testing.T) {
	inv := writeInventory(t, "web1 local", "[web]", "web1")
	bad := writeInventory(t, "web1 local colour=blue")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-i", "--", "cat"}, "--stdin"},
		{[]string{"run", "-i", filepath.Join(t.TempDir(), "none"), "--", "true"}, "--stdin"},
		{[]string{"run", "-i", bad, "--", "true"}, "line 1"},
		{[]string{"run", "-i", inv, "-t", "web2", "--", "true"}, "no target or group"},
		{[]string{"run", "-i", inv, "-t", "@db", "--", "true"}, `no group "db"`},
		{[]string{"run", "-t", "@web", "--", "true"}, "needs an inventory"},
		{[]string{"call", "--forks", "0", "sys.facts"}, "--forks"},
		{[]string{"run", "--connect-timeout", "-1s", "--", "true"}, "--connect-timeout -1s: a duration cannot be negative"},
		{[]string{"run", "--connect-timeout", "0", "--", "true"}, "--connect-timeout 0: want a positive duration"},
		{[]string{"run", "--timeout", "-5s", "--", "true"}, "--timeout -5s: a duration cannot be negative"},
		{[]string{"call", "--timeout", "-1s", "sys.facts"}, "--timeout -1s"},
		{[]string{"cache", "--connect-timeout", "-1s"}, "--connect-timeout -1s"},
		{[]string{"push", "--connect-timeout", "-1s", "a", "b"}, "--connect-timeout -1s"},
		{[]string{"pull", "--connect-timeout", "-1s", "a", "b"}, "--connect-timeout -1s"},
		{[]string{"debug", "--cpu-time", "-1s"}, "--cpu-time -1s"},
		{[]string{"cluster", "drain", "--grace", "-1s", "m1"}, "--grace -1s"},
	} {
		r := mitogo(t, "", c.args...)
		if r.exit != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("mitogo %q: exit %d, stderr %q; want 2 and one line with %q", c.args, r.exit, r.stderr, c.want)
		}
	}
}

// Ctrl-C in a run over many targets kills every command, marks every
// target interrupted and exits 130.
func TestFleetInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inv := writeInventory(t, localInventory(3)...)
	cmd := exec.CommandContext(ctx, bin, "run", "-i", inv, "--json", "--shell", "echo $$; exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	var pids []int
	for len(pids) < 3 && lines.Scan() {
		var rec record
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil || rec.Data == nil {
			t.Fatalf("line %q: %v; want a pid", lines.Text(), err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(*rec.Data))
		if err != nil {
			t.Fatalf("line %q: want a pid", lines.Text())
		}
		pids = append(pids, pid)
	}
	cmd.Process.Signal(os.Interrupt)
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, stderr %q; want 130", code, stderr.String())
	}
	st := statuses(t, parseJSONLines(t, rest.String()))
	for _, n := range []string{"l01", "l02", "l03"} {
		if st[n].Status != "interrupted" || st[n].Error != "ended by SIGINT (while running)" {
			t.Errorf("%s: %+v; want interrupted, ended by SIGINT (while running)", n, st[n])
		}
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

// On a terminal: names in colour, a progress line, and the summary at the
// end; much output from many targets never stalls behind them.
func TestFleetTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	inv := writeInventory(t, localInventory(10)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-i", inv, "--", "seq", "2000")
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&screen, ptmx) // ends with EIO when the last writer closes
	}()
	err = cmd.Wait()
	<-done
	text := screen.String()
	if err != nil {
		t.Fatalf("%v; output ends %q", err, text[max(0, len(text)-500):])
	}
	if strings.Count(text, " | 2000\r\n") != 10 || !strings.Contains(text, "\x1b[36ml01\x1b[0m | 1\r\n") {
		t.Errorf("want every target's last line, with coloured names")
	}
	if !strings.Contains(text, "mitogo: 10 targets in ") || !strings.Contains(text, ": 10 ok\r\n") {
		t.Errorf("no summary; output ends %q", text[max(0, len(text)-500):])
	}
}

// Every command's usage errors are one line, "mitogo CMD: MESSAGE (see
// mitogo CMD --help)", with no second parenthetical before that one.
func TestUsageErrorsOneLine(t *testing.T) {
	inv := writeInventory(t, "web1 local", "[web]", "web1")
	for _, c := range []struct {
		cmd  string
		args []string
	}{
		{"call", nil},
		{"call", []string{"file.stat", `{"paht":"/"}`}},
		{"run", []string{"-t", "@web", "--", "true"}},
		{"run", []string{"-i", inv, "-t", "@db", "--", "true"}},
		{"run", []string{"-i", inv, "-t", "web2", "--", "true"}},
		{"run", []string{"-i", filepath.Join(t.TempDir(), "none"), "--", "true"}},
		{"run", []string{"-i", "-x", "--", "true"}},
		{"run", []string{"--bogus", "--", "true"}},
		{"cluster", []string{"drain", "--bogus", "m1"}},
		{"cluster", []string{"drain"}},
		{"serve", []string{"x"}},
		{"serve", nil},
		{"push", []string{"a"}},
		{"list", []string{"x"}},
	} {
		r := mitogo(t, "", append([]string{c.cmd}, c.args...)...)
		prefix, suffix := "mitogo "+c.cmd+": ", " (see mitogo "+c.cmd+" --help)\n"
		msg, ok := strings.CutSuffix(r.stderr, suffix)
		if r.exit != 2 || !ok || !strings.HasPrefix(msg, prefix) || strings.Contains(msg, "\n") || strings.HasSuffix(msg, ")") {
			t.Errorf("mitogo %s %q: exit %d, stderr %q; want 2 and one line %q...%q, no parenthetical before that",
				c.cmd, c.args, r.exit, r.stderr, prefix, suffix)
		}
	}
}

// The summary of one target says "1 target", not "1 targets".
func TestSummaryOneTarget(t *testing.T) {
	r := mitogo(t, "", "run", "--summary", "--", "true")
	if r.exit != 0 || !strings.HasPrefix(r.stderr, "mitogo: 1 target in ") || !strings.Contains(r.stderr, ": 1 ok\n") {
		t.Errorf("exit %d, stderr %q; want 0 and the summary of 1 target", r.exit, r.stderr)
	}
}

// The retry file carries the connection flags of the run that wrote it
// (unless a target has its own setting), so -i FILE alone reaches the
// targets as that run did.
func TestRetryFileKeepsTheFlags(t *testing.T) {
	dir := t.TempDir()
	retry, key, known := filepath.Join(dir, "retry.txt"), filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts")
	down := sshtest.ClosedPort(t) // never reached: the files are not read
	r := mitogo(t, "", "run", "-t", down, "--identity", key, "--known-hosts", known,
		"--connect-timeout", "7s", "--retry-file", retry, "--", "true")
	if r.exit != 255 {
		t.Fatalf("exit %d; want 255 (unreachable)", r.exit)
	}
	data, err := os.ReadFile(retry)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"identity=" + key, "known-hosts=" + known, "connect-timeout=7s"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("retry file lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "host-key-policy") {
		t.Errorf("retry file has a host-key-policy the run did not set:\n%s", data)
	}
}
