package actors_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/actors"
)

// psTitle is what ps shows for pid: its command line, NULs as spaces, and
// its name.
func psTitle(t *testing.T, pid int) (cmdline, comm string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")), strings.TrimSpace(string(c))
}

// A child shows in ps as mitogo and its context's name, not as the path it
// was started by: a local child, one below it, and one started by sudo over
// stage 1 (whose path is a cache file named by a hash).
func TestProcessTitle(t *testing.T) {
	r := newRouter(t)
	a := local(t, r, actors.Name("web"))
	b := local(t, r, actors.Via(a))
	for _, c := range []*actors.Context{a, b} {
		cmdline, comm := psTitle(t, c.ProcessID())
		if want := "mitogo: " + c.Name(); cmdline != want || comm != "mitogo" {
			t.Errorf("ps shows %s as %q (name %q); want %q (mitogo)", c.Name(), cmdline, comm, want)
		}
	}

	needSudo(t)
	s, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.Via(a))
	if err != nil {
		t.Fatal(err)
	}
	cmdline, comm := psTitle(t, s.ProcessID())
	if want := "mitogo: web/sudo:mitogo-test"; s.Name() != "web/sudo:mitogo-test" || cmdline != want || comm != "mitogo" {
		t.Errorf("ps shows %s as %q (name %q); want %q (mitogo)", s.Name(), cmdline, comm, want)
	}
}
