package main

import (
	"slices"
	"strings"
	"testing"
)

// Groups, a name alone that joins a group, a name alone that is its own
// chain, settings, and a target written back as a line reads the same.
func TestParseInventory(t *testing.T) {
	inv, err := parseInventory("hosts.txt", strings.NewReader(`
# comment
[web]
web1  deploy@web1.example.com          # trailing comment
web2  web2.example.com:2222  user=deploy identity=~/.ssh/deploy
[db]
db1   admin@db1,sudo://postgres  sudo-password-env=DB_PW
web1
box.example.com
`))
	if err != nil {
		t.Fatal(err)
	}
	names := func(g string) string {
		var n []string
		for _, t := range inv.groups[g] {
			n = append(n, t.name)
		}
		return strings.Join(n, " ")
	}
	if got := names("web"); got != "web1 web2" {
		t.Errorf("web = %q", got)
	}
	if got := names("db"); got != "db1 web1 box.example.com" {
		t.Errorf("db = %q", got)
	}
	if got := names("all"); got != "web1 web2 db1 box.example.com" {
		t.Errorf("all = %q", got)
	}
	if b := inv.byName["box.example.com"]; b.chain != "box.example.com" {
		t.Errorf("a name alone: chain %q", b.chain)
	}
	for _, tg := range inv.targets {
		back, err := parseInventory("retry", strings.NewReader(tg.line()))
		if err != nil || len(back.targets) != 1 {
			t.Fatalf("%q: %v", tg.line(), err)
		}
		b := back.targets[0]
		if b.name != tg.name || b.chain != tg.chain || b.line() != tg.line() {
			t.Errorf("%q read back as %q", tg.line(), b.line())
		}
	}
	for _, bad := range []string{"[web", "a local b", "a local port=x", "a local\na local", "[all]", "a telnet://x"} {
		if _, err := parseInventory("bad", strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Targets are one when they reach the same place: an inventory entry by
// its name, a chain by its hops as parsed. An inventory name and the ssh
// host of that name are two, and so are local and the host "local".
func TestResolveTargetsOnce(t *testing.T) {
	inv := writeInventory(t, "box local", "web1 root@127.0.0.1:1", "[g]", "box")
	for _, c := range []struct {
		values []string
		want   []string
	}{
		{[]string{"box", "ssh://box"}, []string{"box", "ssh://box"}},
		{[]string{"local", "ssh://local"}, []string{"local", "ssh://local"}},
		{[]string{"root@h:22", "ssh://root@h:22", " ssh://root@h:22 "}, []string{"root@h:22"}},
		{[]string{"box", "@g", "g"}, []string{"box"}},
		{[]string{"web1", "root@127.0.0.1:1"}, []string{"web1", "root@127.0.0.1:1"}},
	} {
		ts, err := resolveTargets(c.values, inv)
		if err != nil {
			t.Fatalf("%q: %v", c.values, err)
		}
		var got []string
		for _, tg := range ts {
			got = append(got, tg.name)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("-t %q: targets %q, want %q", c.values, got, c.want)
		}
	}
}
