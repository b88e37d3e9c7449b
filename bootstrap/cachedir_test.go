package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// PruneCache keeps the KeepBuilds most recently used builds, any used
// within PruneGrace, and any a process runs; it removes other builds and
// stale temporary files, and leaves other names alone.
func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	hash := func(c byte) string { return strings.Repeat(string(c), 64) }
	put := func(name string, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	put(hash('1'), time.Minute)
	put(hash('2'), 2*time.Minute)
	put(hash('3'), 3*time.Minute)
	put(hash('4'), PruneGrace*9/10) // beyond the newest three, but used within the grace
	put(hash('5'), 6*time.Hour)
	put(hash('6'), 7*time.Hour)
	put(hash('7'), 8*time.Hour)
	put("exe-hashes", 9*time.Hour)
	put(hash('8')+".123.tmp", 2*StaleTemp)
	put(hash('8')+".124.delta", 2*StaleTemp)
	put(hash('9')+".125.tmp", StaleTemp/2)
	// Compressed forms and deltas kept by a master go with their build.
	put(hash('1')+".xz."+hash('e'), 9*time.Hour)
	put(hash('5')+".xz."+hash('e'), 9*time.Hour)
	put(hash('7')+".from-"+hash('1')+"."+hash('e'), 9*time.Hour)
	put(hash('b')+".gz."+hash('e'), PruneGrace/2)

	// A build that runs: a copy of sleep named as a build.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	running := hash('a')
	os.WriteFile(filepath.Join(dir, running), data, 0o700)
	cmd := exec.Command(filepath.Join(dir, running), "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	os.Chtimes(filepath.Join(dir, running), now.Add(-10*time.Hour), now.Add(-10*time.Hour))

	list, err := ListCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range list {
		order = append(order, e.Hash[:1])
		if e.Running != (e.Hash == running) {
			t.Errorf("%s: running %v", e.Hash[:1], e.Running)
		}
	}
	if got := strings.Join(order, ""); got != "1234567a" {
		t.Errorf("listed %s, want the most recently used first: 1234567a", got)
	}

	removed, _, err := PruneCache(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, e := range removed {
		gone = append(gone, e.Hash[:1])
	}
	slices.Sort(gone)
	if strings.Join(gone, "") != "567" {
		t.Errorf("removed %v, want 5 6 7", gone)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if len(n) >= 64 {
			n = n[:1] + n[64:]
		}
		left = append(left, n)
	}
	want := []string{"1", "1.xz." + hash('e'), "2", "3", "4", "9.125.tmp", "a", "b.gz." + hash('e'), "exe-hashes"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
