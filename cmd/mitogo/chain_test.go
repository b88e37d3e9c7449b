package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTargetHops(t *testing.T) {
	hops, err := parseChain("local,podman://bob@web,docker://db,nsenter://podman:web,chroot:///srv/r@x,kubectl://p/c,lxc://c1,nsenter://42,sudo://app")
	if err != nil {
		t.Fatal(err)
	}
	want := []hop{{kind: "local"}, {kind: "podman", user: "bob", target: "web"}, {kind: "docker", target: "db"},
		{kind: "nsenter", target: "podman:web"}, {kind: "chroot", target: "/srv/r@x"}, {kind: "kubectl", target: "p/c"},
		{kind: "lxc", target: "c1"}, {kind: "nsenter", target: "42"}, {kind: "sudo", user: "app"}}
	if !slices.Equal(hops, want) {
		t.Fatalf("hops\n %+v\nwant\n %+v", hops, want)
	}
	for _, h := range hops {
		if _, ok := starts[h.kind]; !ok {
			t.Errorf("no start for %s", h.kind)
		}
	}
	for chain, says := range map[string]string{
		"podman://":       "want podman://[user@]CONTAINER",
		"podman://@web":   "empty user",
		"lxc://a b":       "want lxc://NAME",
		"local,chroot://": "hop 2",
	} {
		if _, err := parseChain(chain); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("-t %q: %v, want an error saying %q", chain, err, says)
		}
	}
	if !strings.Contains(strings.Join(hopKinds, ", "), "nsenter://PID|podman:NAME|docker:NAME|lxc:NAME") {
		t.Errorf("usage lists %q", hopKinds)
	}
}
