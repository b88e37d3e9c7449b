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
	// A form finished after its build's last use goes with the build too.
	put(hash('6')+".zstd."+hash('e'), PruneGrace/2)
	put(hash('6')+".from-"+hash('5')+"."+noDelta, PruneGrace/2)

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
		for _, k := range e.Kept {
			gone = append(gone, e.Hash[:1]+k.Name[64:])
		}
	}
	slices.Sort(gone)
	wantGone := []string{"5", "5.xz." + hash('e'), "6", "6.from-" + hash('5') + ".none", "6.zstd." + hash('e'), "7", "7.from-" + hash('1') + "." + hash('e')}
	if !slices.Equal(gone, wantGone) {
		t.Errorf("removed %v, want %v", gone, wantGone)
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

// ReadCache lists each build with the compressed forms and deltas a master
// keeps beside it, and those whose build is gone as strays; temporary files
// and other names are not listed.
func TestReadCache(t *testing.T) {
	dir := t.TempDir()
	hash := func(c byte) string { return strings.Repeat(string(c), 64) }
	put := func(name string, size int, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o700); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	put(hash('1'), 1000, time.Minute)
	put(hash('2'), 2000, time.Hour)
	put(hash('1')+".xz."+hash('e'), 300, time.Minute)
	put(hash('1')+".gz."+hash('e'), 500, time.Minute)
	put(hash('1')+".from-"+hash('2')+"."+hash('e'), 40, time.Minute)
	put(hash('2')+".from-"+hash('3')+"."+noDelta, 0, time.Hour)
	put(hash('4')+".zstd."+hash('e'), 350, time.Minute) // a stray
	put(hash('1')+".xz.tmp", 10, 0)                     // a form being made
	put(hash('1')+".123.tmp", 10, 0)
	put(hash('1')+".lz4."+hash('e'), 10, 0) // no such format
	put("exe-hashes", 10, 0)

	c, err := ReadCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, format, base string
		size               int64
	}
	kept := func(ks []KeptFile) []row {
		var out []row
		for _, k := range ks {
			out = append(out, row{k.Name[64:], k.Format, k.Base, k.Size})
		}
		slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.name, b.name) })
		return out
	}
	if len(c.Builds) != 2 || c.Builds[0].Hash != hash('1') || c.Builds[1].Hash != hash('2') {
		t.Fatalf("builds %+v", c.Builds)
	}
	want1 := []row{
		{".from-" + hash('2') + "." + hash('e'), "", hash('2'), 40},
		{".gz." + hash('e'), "gz", "", 500},
		{".xz." + hash('e'), "xz", "", 300},
	}
	if got := kept(c.Builds[0].Kept); !slices.Equal(got, want1) {
		t.Errorf("kept with build 1: %v, want %v", got, want1)
	}
	want2 := []row{{".from-" + hash('3') + ".none", "", hash('3'), 0}}
	if got := kept(c.Builds[1].Kept); !slices.Equal(got, want2) {
		t.Errorf("kept with build 2: %v, want %v", got, want2)
	}
	if len(c.Strays) != 1 || c.Strays[0].Build != hash('4') || c.Strays[0].Format != "zstd" || c.Strays[0].Size != 350 {
		t.Errorf("strays %+v, want build 4's zstd form", c.Strays)
	}
}
