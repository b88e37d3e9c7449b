package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/test/sshtest"
)

// plantBuilds puts n fake builds in dir, owned by uid, named by made-up
// hashes that start with prefix and aged 1h, 2h, ...; it returns their
// names, the newest first.
func plantBuilds(t *testing.T, dir, prefix string, n, uid int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := prefix + strings.Repeat(strconv.Itoa(i), 64-len(prefix))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, uid, -1)
		age := time.Now().Add(-time.Duration(i+1) * time.Hour)
		os.Chtimes(p, age, age)
		names = append(names, name)
	}
	return names
}

// mitogo cache lists this account's cache, the most recently used first,
// and --prune keeps the three most recently used and other names.
func TestCacheLocal(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "mitogo")
	os.MkdirAll(dir, 0o700)
	names := plantBuilds(t, dir, "ab", 5, os.Getuid())
	os.WriteFile(filepath.Join(dir, "exe-hashes"), []byte("x"), 0o600)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+home)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mitogo %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	out := run("cache")
	if !strings.HasPrefix(out, dir+": 5 builds") {
		t.Fatalf("mitogo cache:\n%s", out)
	}
	for i, n := range names {
		if j := strings.Index(out, n[:16]); j < 0 || (i > 0 && j < strings.Index(out, names[i-1][:16])) {
			t.Errorf("build %d (%s) missing or out of order:\n%s", i, n[:16], out)
		}
	}
	out = run("cache", "--prune")
	if !strings.HasPrefix(out, dir+": 3 builds") || strings.Count(out, "removed") != 2 {
		t.Fatalf("mitogo cache --prune:\n%s", out)
	}
	for i, n := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if (i < 3) != (err == nil) {
			t.Errorf("build %d: %v (want the three newest kept)", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "exe-hashes")); err != nil {
		t.Errorf("exe-hashes: %v", err)
	}
}

// mitogo cache -t shows the cache of the context at the end of the chain,
// with the build it runs marked, and --prune there keeps that build.
func TestCacheRemote(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo and the user mitogo-test (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo and the user mitogo-test")
	}
	u, err := user.Lookup("mitogo-test")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	r := mitogo(t, "", "cache", "-t", "sudo://mitogo-test")
	dir := filepath.Join(u.HomeDir, ".cache", "mitogo")
	if r.exit != 0 || !strings.HasPrefix(r.stdout, dir+": ") || !strings.Contains(r.stdout, "github.com/mitogo/mitogo/cmd/mitogo") || !strings.Contains(r.stdout, "running") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr %q", r.exit, r.stdout, r.stderr)
	}
	// Five builds older than any other there (two days and more): with the
	// running one kept, at least the two oldest go.
	names := plantBuilds(t, dir, "cd", 5, uid)
	for i, n := range names {
		old := time.Now().Add(-time.Duration(48+i) * time.Hour)
		os.Chtimes(filepath.Join(dir, n), old, old)
	}
	names = names[3:]
	r = mitogo(t, "", "cache", "-t", "sudo://mitogo-test", "--prune")
	if r.exit != 0 {
		t.Fatalf("--prune: exit %d, stderr %q", r.exit, r.stderr)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s is still there:\n%s", n[:16], r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "running") {
		t.Errorf("the running build is not listed:\n%s", r.stdout)
	}
}

// mitogo cache lists, under each build, the compressed forms and deltas
// the master keeps beside it, counts them in the total (--json too), and
// --prune removes them with their build.
func TestCacheLocalKeptFiles(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "mitogo")
	os.MkdirAll(dir, 0o700)
	names := plantBuilds(t, dir, "ef", 5, os.Getuid())
	sum := strings.Repeat("e", 64)
	kept := map[string]int{ // name: size
		names[0] + ".xz." + sum:                       3000,
		names[0] + ".from-" + names[1] + "." + sum:    700,
		names[4] + ".zstd." + sum:                     4000,
		names[4] + ".from-" + names[3] + "." + "none": 0,
		strings.Repeat("9", 64) + ".gz." + sum:        500, // its build is gone
		names[0] + ".123.tmp":                         100, // not a kept file
		names[0] + ".xz.tmp":                          100,
	}
	var total int64
	for n, size := range kept {
		if err := os.WriteFile(filepath.Join(dir, n), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(n, ".tmp") {
			total += int64(size)
		}
	}
	for _, n := range names {
		st, _ := os.Stat(filepath.Join(dir, n))
		total += st.Size()
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+home)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mitogo %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	out := run("cache")
	if !strings.HasPrefix(out, dir+": 5 builds, "+sizeString(total)+" (with 3 compressed forms, 2 deltas)\n") {
		t.Errorf("mitogo cache: want a total of %s with the forms and deltas:\n%s", sizeString(total), out)
	}
	under := func(out, build, what string) bool { // what is listed after build, before the next build
		in := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, build[:16]) {
				in = true
				continue
			}
			if in && !strings.HasPrefix(l, " ") {
				return false
			}
			if in && strings.Contains(l, what) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ build, what string }{
		{names[0], "xz form"}, {names[0], "delta from " + names[1][:16]},
		{names[4], "zstd form"}, {names[4], "no delta from " + names[3][:16]},
	} {
		if !under(out, c.build, c.what) {
			t.Errorf("%q not listed under %s:\n%s", c.what, c.build[:16], out)
		}
	}
	if !strings.Contains(out, "kept without their build") || !strings.Contains(out, strings.Repeat("9", 16)) {
		t.Errorf("the stray form is not listed:\n%s", out)
	}

	var rep cacheReport
	if err := json.Unmarshal([]byte(run("cache", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Dir != dir || rep.Total != total || len(rep.Builds) != 5 || len(rep.Builds[0].Kept) != 2 || len(rep.Strays) != 1 {
		t.Errorf("--json: %+v; want 5 builds, 2 files kept with the newest, 1 stray, total %d", rep, total)
	}

	// The two oldest builds go, and what was kept beside them with them.
	out = run("cache", "--prune")
	for n := range kept {
		_, err := os.Stat(filepath.Join(dir, n))
		if gone := strings.HasPrefix(n, names[4]) || strings.HasPrefix(n, names[3]); gone != (err != nil) {
			t.Errorf("%s…%s: %v after --prune", n[:16], n[64:], err)
		}
	}
	removed := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "removed") {
			removed++
		}
	}
	if !under(out, names[4], "zstd form") || removed != 4 {
		t.Errorf("mitogo cache --prune: want builds 3 and 4 and build 4's form and delta marked removed:\n%s", out)
	}
}

// A target cache -t cannot reach exits 255, as run and ssh do.
func TestCacheUnreachable(t *testing.T) {
	r := mitogo(t, "", "cache", "-t", "root@"+sshtest.ClosedPort(t))
	if r.exit != 255 || !strings.HasPrefix(r.stderr, "mitogo: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 255 and one line", r.exit, r.stderr)
	}
}

// Both helps say how to prune this machine's cache and a context's, and
// how many builds a cache keeps and for how long (what the pruning uses).
func TestHelpSaysHowCachesArePruned(t *testing.T) {
	n, grace := strconv.Itoa(bootstrap.KeepBuilds), "the last "+inWords(bootstrap.PruneGrace)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"mitogo cache --prune", "mitogo cache -t deploy@web1,sudo://root --prune", "keeps its " + n, grace}},
		{[]string{"cache", "--help"}, []string{"--prune does that now, here or, with -t,", "keeps the " + n, grace}},
	} {
		r := mitogo(t, "", c.args...)
		for _, w := range c.want {
			if r.exit != 0 || !strings.Contains(r.stdout, w) {
				t.Errorf("mitogo %q: exit %d; want %q in its help:\n%s", c.args, r.exit, w, r.stdout)
			}
		}
	}
}

func TestInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Minute: "10 minutes", time.Minute: "a minute",
		time.Hour: "an hour", 2 * time.Hour: "2 hours", 90 * time.Second: "1m30s", 0: "0s"} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%v) = %q; want %q", d, got, want)
		}
	}
}
