// Command fleet is mitogo's fleet example: it starts a context on every
// target it is given, calls one function in all of them at once, prints
// each result as it arrives (an unreachable or hung target is just that
// target's error), and pushes a file to every context that answered.
//
//	go run ./examples/fleet local local web1 deploy@web2:2222
//	go run ./examples/fleet -push ./motd -dest /tmp/motd local local
//
// A target is "local" (a child on this machine) or an ssh target as ssh
// reads it ([user@]host[:port] or a ~/.ssh/config alias).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/files"
)

// facts is what each target reports; it runs in the target's context.
type facts struct {
	Host   string `msgpack:"host"`
	User   string `msgpack:"user"`
	Pid    int    `msgpack:"pid"`
	Arch   string `msgpack:"arch"`
	Uptime string `msgpack:"uptime"`
}

// gather is registered at package init, so every copy of this program
// (the master and each context it starts) knows it by name.
var gather = actors.Register("fleet.facts", func(ctx context.Context, _ struct{}) (facts, error) {
	host, err := os.Hostname()
	if err != nil {
		return facts{}, err
	}
	up, _ := os.ReadFile("/proc/uptime")
	who := "?"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	return facts{Host: host, User: who, Pid: os.Getpid(), Arch: runtime.GOARCH, Uptime: string(up)}, nil
})

func main() {
	actors.Main() // serves as a context when started as one; returns at once otherwise

	push := flag.String("push", "", "a local file to push to every target that answered")
	dest := flag.String("dest", "/tmp/fleet-example", "where -push writes it on each target")
	limit := flag.Int("forks", 20, "work in at most this many targets at once")
	timeout := flag.Duration("timeout", 30*time.Second, "bound each target's connect and call")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: fleet [-push FILE [-dest PATH]] TARGET...   (TARGET: local or [user@]host[:port])")
		os.Exit(2)
	}
	os.Exit(run(os.Stdout, flag.Args(), *push, *dest, *limit, *timeout))
}

// run does the work and returns the exit status: 0 when every target
// answered (and took the file), else 1.
func run(w io.Writer, names []string, push, dest string, limit int, timeout time.Duration) int {
	r, err := actors.NewRouter(actors.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 1
	}
	defer r.Shutdown(context.Background()) // children first; nothing left behind
	ctx := context.Background()

	// Connect every target, at most limit at once; failures are listed
	// per target, and one slow host never holds up the others.
	targets := make([]actors.ConnectTarget, len(names))
	for i, name := range names {
		targets[i] = actors.ConnectTarget{Name: name, Connect: connector(name)}
	}
	conns := r.ConnectAll(ctx, targets, actors.Limit(limit), actors.TargetTimeout(timeout))
	for _, c := range conns.Failed() {
		fmt.Fprintf(w, "%-24s unreachable: %v\n", c.Name, c.Err)
	}

	// One call, every context, results as they finish.
	failed := len(conns.Failed())
	for res := range gather.Fan(ctx, conns.Contexts(), struct{}{}, actors.Limit(limit), actors.TargetTimeout(timeout)) {
		if res.Err != nil {
			failed++
			fmt.Fprintf(w, "%-24s failed: %v\n", res.Target.Name(), res.Err)
			continue
		}
		f := res.Value
		fmt.Fprintf(w, "%-24s %s as %s, pid %d, %s\n", res.Target.Name(), f.Host, f.User, f.Pid, f.Arch)
	}

	// The same file to every context, streamed and checked by sha256; a
	// context that leads to several targets receives it once.
	if push != "" {
		for _, res := range files.PushMany(ctx, conns.Contexts(), push, dest) {
			switch {
			case res.Err != nil:
				failed++
				fmt.Fprintf(w, "%-24s push failed: %v\n", res.Target.Name(), res.Err)
			case res.Changed:
				fmt.Fprintf(w, "%-24s %s written (%d bytes sent)\n", res.Target.Name(), dest, res.Bytes)
			default:
				fmt.Fprintf(w, "%-24s %s unchanged\n", res.Target.Name(), dest)
			}
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// connector starts the context a target names.
func connector(name string) actors.Connector {
	if name == "local" {
		return func(ctx context.Context, r *actors.Router) (*actors.Context, error) { return r.Local(ctx) }
	}
	return func(ctx context.Context, r *actors.Router) (*actors.Context, error) { return r.SSH(ctx, name) }
}
