package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
)

var cacheCommand = &command{
	name:    "cache",
	summary: "show (and prune) the cache of mitogo builds here or in a context",
	usage:   "[-t CHAIN] [connect flags] [--prune] [--json]",
	help: fmt.Sprintf(`Lists the builds of mitogo programs in an account's cache, the most recently
used first: the cache on this machine (where builds sent to this account land,
and where mitogo keeps what it sent, to send the next build as a delta), or,
with -t, the cache the context at the end of CHAIN runs from. Each line shows
the build's hash, size, last use, the program it is, and whether a process
runs it. Under a build come the files the master keeps beside it: its
compressed forms (xz, zstd, gz: a first contact elsewhere sends the smallest
the far side unpacks) and the deltas to it from earlier builds ("no delta"
marks a pair whose delta would not pay). The total counts them all.

A cache cleans itself: each time a new build lands in it, it keeps the %d
most recently used builds, any used in the last %s and any running, and
removes the others, with their forms and deltas, and temporary files
untouched for %s. --prune does that now, here or, with -t, in the
context's cache.

Examples:
  mitogo cache
  mitogo cache -t deploy@web1,sudo://root --prune
`, bootstrap.KeepBuilds, inWords(bootstrap.PruneGrace), inWords(bootstrap.StaleTemp)),
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, false)
		fs.BoolVar(&o.prune, "prune", false, "remove the builds the cache would remove, now")
		fs.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	},
	run: cacheMain,
}

// cacheRequest asks a context about the cache it runs from.
type cacheRequest struct {
	Prune bool `msgpack:"prune" json:"prune"`
}

// cacheBuild is one build in a cache.
type cacheBuild struct {
	Hash    string      `msgpack:"hash" json:"hash"`
	Size    int64       `msgpack:"size" json:"size"`
	LastUse time.Time   `msgpack:"last_use" json:"last_use"`
	Running bool        `msgpack:"running" json:"running"`
	Program string      `msgpack:"program" json:"program"` // main package path and module version, "" when unknown
	Removed bool        `msgpack:"removed" json:"removed"`
	Kept    []cacheKept `msgpack:"kept" json:"kept"` // its compressed forms and the deltas to it
}

// cacheKept is a file kept beside a build (see bootstrap.KeptFile).
type cacheKept struct {
	Name    string    `msgpack:"name" json:"name"`
	Build   string    `msgpack:"build" json:"build"`
	Format  string    `msgpack:"format" json:"format,omitempty"` // a compressed form's: xz, zstd, gz
	Base    string    `msgpack:"base" json:"base,omitempty"`     // a delta's base build
	Size    int64     `msgpack:"size" json:"size"`
	ModTime time.Time `msgpack:"mod_time" json:"mod_time"`
}

// cacheReport is a cache's contents, after pruning when asked.
type cacheReport struct {
	Dir    string       `msgpack:"dir" json:"dir"`
	Builds []cacheBuild `msgpack:"builds" json:"builds"`
	Strays []cacheKept  `msgpack:"strays" json:"strays"` // kept files whose build is gone
	Total  int64        `msgpack:"total" json:"total"`   // bytes of what is left: builds, kept files, strays
	Freed  int64        `msgpack:"freed" json:"freed"`
}

// keptOf converts the files kept beside a build.
func keptOf(ks []bootstrap.KeptFile) []cacheKept {
	out := make([]cacheKept, 0, len(ks))
	for _, k := range ks {
		out = append(out, cacheKept{Name: k.Name, Build: k.Build, Format: k.Format, Base: k.Base, Size: k.Size, ModTime: k.ModTime})
	}
	return out
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
			rep.Builds = append(rep.Builds, cacheBuild{Hash: b.Hash, Size: b.Size, LastUse: b.LastUse, Removed: true, Kept: keptOf(b.Kept)})
		}
	}
	c, err := bootstrap.ReadCache(dir)
	if err != nil {
		return rep, err
	}
	kept := make([]cacheBuild, 0, len(c.Builds))
	for _, b := range c.Builds {
		kept = append(kept, cacheBuild{Hash: b.Hash, Size: b.Size, LastUse: b.LastUse, Running: b.Running,
			Program: programOf(filepath.Join(dir, b.Hash)), Kept: keptOf(b.Kept)})
		rep.Total += b.Size
		for _, k := range b.Kept {
			rep.Total += k.Size
		}
	}
	rep.Builds = append(kept, rep.Builds...)
	rep.Strays = keptOf(c.Strays)
	for _, k := range c.Strays {
		rep.Total += k.Size
	}
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
	if o.json {
		out, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	printCache(e, rep)
	return nil
}

// printCache writes rep as a table, the builds removed last, each build's
// kept files under it, then the strays.
func printCache(e *env, rep cacheReport) {
	var n, forms, deltas int
	count := func(ks []cacheKept) {
		for _, k := range ks {
			if k.Format != "" {
				forms++
			} else {
				deltas++
			}
		}
	}
	for _, b := range rep.Builds {
		if !b.Removed {
			n++
			count(b.Kept)
		}
	}
	count(rep.Strays)
	fmt.Fprintf(e.stdout, "%s: %s, %s", rep.Dir, plural(n, "build"), sizeString(rep.Total))
	if forms+deltas > 0 {
		fmt.Fprintf(e.stdout, " (with %s, %s)", plural(forms, "compressed form"), plural(deltas, "delta"))
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	now := time.Now()
	ago := func(t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" }
	for _, b := range rep.Builds {
		state := ""
		switch {
		case b.Removed:
			state = "removed"
		case b.Running:
			state = "running"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Hash[:16], sizeString(b.Size), ago(b.LastUse), b.Program, state)
		for _, k := range b.Kept {
			state := ""
			if b.Removed {
				state = "removed"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t\t%s\n", keptLabel(k), sizeString(k.Size), ago(k.ModTime), state)
		}
	}
	tw.Flush()
	if len(rep.Strays) > 0 {
		fmt.Fprintf(e.stdout, "kept without their build (removed once untouched for %s):\n", bootstrap.PruneGrace)
		for _, k := range rep.Strays {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.Build[:16], keptLabel(k), sizeString(k.Size), ago(k.ModTime))
		}
		tw.Flush()
	}
	if rep.Freed > 0 {
		fmt.Fprintf(e.stdout, "freed %s\n", sizeString(rep.Freed))
	}
}

// keptLabel says what a kept file is: "xz form", "delta from <base>".
func keptLabel(k cacheKept) string {
	switch {
	case k.Format != "":
		return k.Format + " form"
	case strings.HasSuffix(k.Name, ".none"):
		return "no delta from " + k.Base[:min(16, len(k.Base))]
	}
	return "delta from " + k.Base[:min(16, len(k.Base))]
}

// plural is "1 build", "2 builds".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// sizeString is n bytes in MiB, or KiB or bytes when smaller.
func sizeString(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// inWords says d, a whole number of minutes or hours, as help text does:
// "10 minutes", "an hour"; others as Duration.String.
func inWords(d time.Duration) string {
	n, unit := int64(0), ""
	switch {
	case d > 0 && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d > 0 && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	default:
		return d.String()
	}
	if n == 1 && unit == "hour" {
		return "an hour"
	}
	if n == 1 {
		return "a minute"
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
