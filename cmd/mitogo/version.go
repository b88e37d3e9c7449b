package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

var versionCommand = &command{
	name:    "version",
	summary: "print mitogo's version, the commit it was built from and its Go version",
	usage:   "[--json]",
	help: `Prints what this mitogo binary is: the module version (a tag when it was
installed with go install ...@VERSION, "(devel)" when built from a checkout),
the commit it was built from and its time, whether the checkout had
uncommitted changes, and the Go release and platform it was built for.
'mitogo --version' prints the same. The binary it copies to other machines
is this one, so a far side runs exactly this version.

Examples:
  mitogo version
  mitogo version --json
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		fs.BoolVar(&o.json, "json", false, "print one JSON object instead of text")
	},
	run: versionMain,
}

// buildInfo is what the binary knows about its own build.
type buildInfo struct {
	Module   string `json:"module"`             // the module path
	Version  string `json:"version"`            // its version, "(devel)" for a checkout
	Revision string `json:"revision,omitempty"` // the VCS commit
	Time     string `json:"time,omitempty"`     // the commit's time, RFC 3339
	Modified bool   `json:"modified"`           // the checkout had uncommitted changes
	Go       string `json:"go"`                 // the Go release it was built with
	Platform string `json:"platform"`           // GOOS/GOARCH
}

// readBuildInfo reads the build information the Go toolchain embedded.
// Revision and Time are empty when the binary was built without VCS
// stamping (go build -buildvcs=false, or outside a repository).
func readBuildInfo() buildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return fromBuildInfo(info)
}

// fromBuildInfo extracts what 'mitogo version' prints from info, which is
// nil when the binary carries none.
func fromBuildInfo(info *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return b
	}
	b.Module, b.Version, b.Go = info.Main.Path, info.Main.Version, info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func versionMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	b := readBuildInfo()
	if o.json {
		enc := json.NewEncoder(e.stdout)
		return enc.Encode(b)
	}
	return b.write(e.stdout)
}

// write prints b as text: a first line in the shape of 'go version', then
// the commit.
func (b buildInfo) write(w io.Writer) error {
	_, err := fmt.Fprintf(w, "mitogo %s %s %s\n", b.Version, b.Go, b.Platform)
	if err == nil && b.Revision != "" {
		modified := ""
		if b.Modified {
			modified = " (modified)"
		}
		_, err = fmt.Fprintf(w, "commit %s%s, %s\n", b.Revision, modified, b.Time)
	}
	return err
}
