package main

import (
	"strings"
	"testing"

	"github.com/mitogo/mitogo/test/containertest"
)

// Container hops as a user types them: at depth, with a user, nsenter by
// container name, and a missing container's cause in one line.
func TestContainerHops(t *testing.T) {
	e := containertest.NeedPodman(t)
	rootfs := containertest.NewRootfs(t)
	name := e.Run(t, rootfs)
	r := mitogo(t, "", "run", "-t", "local,podman://"+containertest.User+"@"+name, "--", "id", "-u")
	if r.exit != 0 || strings.TrimSpace(r.stdout) != "1000" {
		t.Fatalf("podman hop: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	r = mitogo(t, "", "run", "-t", "nsenter://podman:"+name, "--", "cat", "/etc/mitogo-rootfs")
	if r.exit != 0 || r.stdout != rootfs.Token {
		t.Fatalf("nsenter hop: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	r = mitogo(t, "", "run", "-t", "podman://mitogo-no-such-container", "--", "true")
	if r.exit != 255 || !strings.Contains(r.stderr, "no such container") {
		t.Fatalf("missing container: exit %d, stderr %q", r.exit, r.stderr)
	}
}
