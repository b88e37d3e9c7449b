package main

import (
	"flag"
	"io"
	"testing"
)

// run and call go through the cluster when --cluster names one without
// --nats, at the default URL serve and cluster use, not to an ssh host of
// that name; without --cluster, --nats or $MITOGO_NATS, they do not.
func TestClusterWithoutNATS(t *testing.T) {
	t.Setenv("MITOGO_NATS", "")
	t.Setenv("MITOGO_CLUSTER", "")
	for _, c := range []*command{runCommand, callCommand} {
		parse := func(args ...string) *options {
			var o options
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.flags(fs, &env{stdout: io.Discard, stderr: io.Discard}, &o)
			if err := fs.Parse(args); err != nil {
				t.Fatalf("%s %q: %v", c.name, args, err)
			}
			return &o
		}
		if o := parse("--cluster", "ops", "-t", "web1"); !o.nats.use() || o.nats.url != defaultNATS || o.nats.cluster != "ops" {
			t.Errorf("%s --cluster ops: through a cluster %v, at %q, named %q; want at %s, ops", c.name, o.nats.use(), o.nats.url, o.nats.cluster, defaultNATS)
		}
		if o := parse("-t", "web1"); o.nats.use() {
			t.Errorf("%s -t web1: goes through a cluster at %q", c.name, o.nats.url)
		}
		if o := parse("--nats", "nats://127.0.0.1:1", "-t", "web1"); !o.nats.use() || o.nats.cluster != "default" {
			t.Errorf("%s --nats: through a cluster %v, named %q", c.name, o.nats.use(), o.nats.cluster)
		}
	}
	t.Setenv("MITOGO_NATS", "nats://127.0.0.1:1")
	var o options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	runCommand.flags(fs, &env{stdout: io.Discard, stderr: io.Discard}, &o)
	if err := fs.Parse([]string{"-t", "web1"}); err != nil || !o.nats.use() || o.nats.url != "nats://127.0.0.1:1" {
		t.Errorf("run with MITOGO_NATS set: through a cluster %v at %q (%v)", o.nats.use(), o.nats.url, err)
	}
}
