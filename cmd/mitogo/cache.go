package main

import (
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
)

var cacheCommand = &command{
	name:    "cache",
	summary: "show (and prune) the cache of mitogo builds here or in a context",
	usage:   "[-t CHAIN] [connect flags] [--prune]",
	help: fmt.Sprintf(`Lists the builds of mitogo programs in an account's cache, the most recently
used first: the cache on this machine (where builds sent to this account land,
and where mitogo keeps what it sent, to send the next build as a delta), or,
with -t, the cache the context at the end of CHAIN runs from. Each line shows
the build's hash, size, last use, the program it is, and whether a process
runs it.

A cache cleans itself: each time a new build lands in it, it keeps the %d most
recently used builds, any used in the last %s and any running, and removes
the others and temporary files untouched for %s. --prune does that now.

Examples:
  mitogo cache
  mitogo cache -t deploy@web1,sudo://root --prune
`, bootstrap.KeepBuilds, bootstrap.PruneGrace, bootstrap.StaleTemp),
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, false)
		fs.BoolVar(&o.prune, "prune", false, "remove the builds the cache would remove, now")
	},
	run: cacheMain,
}

// cacheRequest asks a context about the cache it runs from.
type cacheRequest struct {
	Prune bool `msgpack:"prune" json:"prune"`
}

// cacheBuild is one build in a cache.
type cacheBuild struct {
	Hash    string    `msgpack:"hash" json:"hash"`
	Size    int64     `msgpack:"size" json:"size"`
	LastUse time.Time `msgpack:"last_use" json:"last_use"`
	Running bool      `msgpack:"running" json:"running"`
	Program string    `msgpack:"program" json:"program"` // main package path and module version, "" when unknown
	Removed bool      `msgpack:"removed" json:"removed"`
}

// cacheReport is a cache's contents, after pruning when asked.
type cacheReport struct {
	Dir    string       `msgpack:"dir" json:"dir"`
	Builds []cacheBuild `msgpack:"builds" json:"builds"`
	Freed  int64        `msgpack:"freed" json:"freed"`
}

// cacheFunc reports (and prunes) the cache of the context it runs in.
var cacheFunc = actors.Register("mitogo.cache", func(ctx context.Context, req cacheRequest) (cacheReport, error) {
	dir, err := bootstrap.SelfCacheDir()
	if err != nil {
		return cacheReport{}, err
	}
	return inspectCache(dir, req.Prune)
})

// inspectCache lists dir's builds and prunes it when prune is set; the
// builds removed are listed too, marked.
func inspectCache(dir string, prune bool) (cacheReport, error) {
	rep := cacheReport{Dir: dir}
	if prune {
		removed, freed, err := bootstrap.PruneCache(dir, time.Now())
		if err != nil {
			return rep, err
		}
		rep.Freed = freed
		for _, b := range removed {
			rep.Builds = append(rep.Builds, cacheBuild{Hash: b.Hash, Size: b.Size, LastUse: b.LastUse, Removed: true})
		}
	}
	list, err := bootstrap.ListCache(dir)
	if err != nil {
		return rep, err
	}
	kept := make([]cacheBuild, 0, len(list))
	for _, b := range list {
		kept = append(kept, cacheBuild{Hash: b.Hash, Size: b.Size, LastUse: b.LastUse, Running: b.Running,
			Program: programOf(filepath.Join(dir, b.Hash))})
	}
	rep.Builds = append(kept, rep.Builds...)
	return rep, nil
}

// programOf names the Go program in the executable at path from its build
// information: its main package and module version.
func programOf(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	return info.Path + " " + info.Main.Version
}

func cacheMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	var rep cacheReport
	if len(o.targets) == 0 {
		dir, err := bootstrap.LocalCacheDir()
		if err != nil {
			return err
		}
		if rep, err = inspectCache(dir, o.prune); err != nil {
			return err
		}
	} else {
		s, err := connect(ctx, e, o)
		if err != nil {
			return err
		}
		defer s.close()
		if rep, err = cacheFunc.Call(ctx, s.target, cacheRequest{Prune: o.prune}); err != nil {
			return err
		}
	}
	printCache(e, rep)
	return nil
}

// printCache writes rep as a table, the builds removed last.
func printCache(e *env, rep cacheReport) {
	var kept, n int64
	for _, b := range rep.Builds {
		if !b.Removed {
			kept += b.Size
			n++
		}
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(e.stdout, "%s: %d build%s, %.1f MiB\n", rep.Dir, n, plural, float64(kept)/(1<<20))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	now := time.Now()
	for _, b := range rep.Builds {
		state := ""
		switch {
		case b.Removed:
			state = "removed"
		case b.Running:
			state = "running"
		}
		fmt.Fprintf(tw, "%s\t%.1f MiB\t%s ago\t%s\t%s\n", b.Hash[:16], float64(b.Size)/(1<<20),
			now.Sub(b.LastUse).Round(time.Second), b.Program, state)
	}
	tw.Flush()
	if rep.Freed > 0 {
		fmt.Fprintf(e.stdout, "freed %.1f MiB\n", float64(rep.Freed)/(1<<20))
	}
}
