package main

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
)

// startCPUProfile profiles the master's CPU into dir/cpu.pprof until the
// returned function is called.
func startCPUProfile(dir string) (stop func()) {
	peerkit.Must(os.MkdirAll(dir, 0o755))
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	peerkit.Must(err)
	peerkit.Must(pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		peerkit.Must(f.Close())
	}
}

// writeProfile writes the named runtime profile ("heap", "goroutine"; a
// name with a suffix after '-' writes that profile under the whole name)
// into dir/NAME.pprof.
func writeProfile(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	kind, _, _ := strings.Cut(name, "-")
	if kind == "heap" {
		runtime.GC()
	}
	return pprof.Lookup(kind).WriteTo(f, 0)
}

// cpuTimes is the CPU time of this process and of its children, and how
// many times their threads were put on a CPU (wake-ups, roughly).
type cpuTimes struct {
	self, children         time.Duration
	selfRuns, childrenRuns int64
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{a.self - b.self, a.children - b.children, a.selfRuns - b.selfRuns, a.childrenRuns - b.childrenRuns}
}

// cpuOf reads the CPU time of pid and, as its children's, the sum over
// the living descendants of pid and of each of roots (the sshd that serves
// the remote contexts: their processes are its, not the master's).
func cpuOf(pid int, roots ...int) cpuTimes {
	var t cpuTimes
	t.self, t.selfRuns = procCPU(pid)
	for _, root := range append([]int{pid}, roots...) {
		for _, c := range descendants(root) {
			cpu, runs := procCPU(c)
			t.children += cpu
			t.childrenRuns += runs
		}
	}
	return t
}

// descendants lists the living descendants of pid (each thread lists the
// children it started).
func descendants(pid int) []int {
	var out []int
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

// procCPU is the time pid's threads have run on a CPU, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the ticks of
// /proc/PID/stat, which round a child's few calls down to nothing).
// The third field counts the times a thread was put on a CPU.
func procCPU(pid int) (sum time.Duration, runs int64) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		n, _ := strconv.ParseInt(f[2], 10, 64)
		sum += time.Duration(ns)
		runs += n
	}
	return sum, runs
}

// logMemory logs where the master's memory is, as the Go runtime sees it,
// beside its RSS and thread count.
func logMemory() {
	memoryLine("as measured")
	debug.FreeOSMemory()
	memoryLine("after debug.FreeOSMemory")
}

func memoryLine(when string) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss, _ := peerkit.RSSKB(os.Getpid())
	threads, _ := os.ReadDir("/proc/self/task")
	kb := func(v uint64) uint64 { return v >> 10 }
	peerkit.Logf("memory %s (KiB): rss %d; heap in use %d, idle %d (released %d), goroutine stacks %d, other runtime %d; %d goroutines, %d threads",
		when, rss, kb(m.HeapInuse), kb(m.HeapIdle), kb(m.HeapReleased), kb(m.StackInuse),
		kb(m.MSpanSys+m.MCacheSys+m.BuckHashSys+m.GCSys+m.OtherSys), runtime.NumGoroutine(), len(threads))
}
