package builtins_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/mitogo/mitogo/builtins"
)

func TestFacts(t *testing.T) {
	_, c := child(t)
	f, err := builtins.Facts.Call(ctxT(t), c, builtins.FactsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if f.Hostname != host || f.OS != runtime.GOOS || f.Arch != runtime.GOARCH || f.UID != os.Getuid() {
		t.Errorf("facts = %+v; want hostname %q, %s/%s, uid %d", f, host, runtime.GOOS, runtime.GOARCH, os.Getuid())
	}
	if f.PID != c.ProcessID() || f.PID == os.Getpid() {
		t.Errorf("facts.PID = %d; the child's pid is %d, the test's %d", f.PID, c.ProcessID(), os.Getpid())
	}
	if f.Context != c.Name() {
		t.Errorf("facts.Context = %q, want %q", f.Context, c.Name())
	}
	if f.Kernel == "" || f.User == "" {
		t.Errorf("facts = %+v: kernel or user missing", f)
	}
	if _, err := os.Stat("/proc/uptime"); err == nil && f.Uptime <= 0 {
		t.Errorf("facts.Uptime = %v", f.Uptime)
	}
}
