package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// target is one place a command runs in: a name for output and reports,
// the chain that reaches it, and the settings that apply to its hops.
type target struct {
	name     string
	chain    string
	settings map[string]string // inventory settings, by key (see settingKeys)
}

// settingKeys are the per-target settings an inventory line may give, and
// what each means.
var settingKeys = map[string]string{
	"user":              "the first ssh hop's login user, when the chain does not name one",
	"port":              "the first ssh hop's port, when the chain does not give one",
	"identity":          "ssh hops: the private key file (as --identity)",
	"password-env":      "ssh hops: the environment variable holding the login password",
	"sudo-password-env": "sudo, su and doas hops: the variable holding their password",
	"host-key-policy":   "ssh hops: strict, accept-new or ignore (as --host-key-policy)",
	"known-hosts":       "ssh hops: the known_hosts file (as --known-hosts)",
	"connect-timeout":   "bound each hop's connection (as --connect-timeout)",
}

// inventory is a parsed inventory file: targets in file order, and groups.
type inventory struct {
	path    string
	targets []*target
	byName  map[string]*target
	groups  map[string][]*target // "all" holds every target
}

// readInventory parses the inventory at path (see inventoryHelp).
func readInventory(path string) (*inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("-i %s: %v (-i names an inventory file; to forward stdin from a terminal use --stdin)", path, err)
	}
	defer f.Close()
	inv, err := parseInventory(path, f)
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// parseInventory reads an inventory: one target per line, "NAME [CHAIN]
// [KEY=VALUE...]", "#" comments, "[GROUP]" lines that start a group. A
// NAME alone that another line defines only adds it to the current group;
// a NAME alone that no line defines is a target whose chain is NAME.
func parseInventory(path string, r io.Reader) (*inventory, error) {
	inv := &inventory{path: path, byName: map[string]*target{}, groups: map[string][]*target{}}
	type member struct {
		name, group string
		line        int
	}
	var bare []member
	group := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, args ...any) error {
			return usagef("inventory %s, line %d: %s", path, n, fmt.Sprintf(format, args...))
		}
		if strings.HasPrefix(fields[0], "[") {
			if len(fields) != 1 || !strings.HasSuffix(fields[0], "]") || len(fields[0]) < 3 {
				return nil, bad("want a group as [NAME], got %q", strings.TrimSpace(line))
			}
			group = fields[0][1 : len(fields[0])-1]
			if group == "all" {
				return nil, bad("the group all is every target; name yours otherwise")
			}
			if _, ok := inv.groups[group]; !ok {
				inv.groups[group] = nil
			}
			continue
		}
		name := fields[0]
		if strings.Contains(name, "=") || strings.HasPrefix(name, "@") {
			return nil, bad("%q is not a target name", name)
		}
		if len(fields) == 1 {
			bare = append(bare, member{name, group, n})
			continue
		}
		t := &target{name: name, chain: name, settings: map[string]string{}}
		rest := fields[1:]
		if !strings.Contains(rest[0], "=") {
			t.chain, rest = rest[0], rest[1:]
		}
		for _, kv := range rest {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, bad("%q: want KEY=VALUE after the chain (keys: %s)", kv, strings.Join(sortedKeys(), ", "))
			}
			if _, known := settingKeys[k]; !known {
				return nil, bad("unknown setting %q (keys: %s)", k, strings.Join(sortedKeys(), ", "))
			}
			if k == "connect-timeout" {
				if d, err := time.ParseDuration(v); err != nil || d <= 0 {
					return nil, bad("connect-timeout=%q is not a duration such as 10s", v)
				}
			}
			if k == "port" {
				if p, err := strconv.Atoi(v); err != nil || p <= 0 || p > 65535 {
					return nil, bad("port=%q is not a port number", v)
				}
			}
			t.settings[k] = v
		}
		if _, dup := inv.byName[name]; dup {
			return nil, bad("target %q is defined twice", name)
		}
		if _, err := parseChain(t.chain); err != nil {
			return nil, bad("target %s: %v", name, err)
		}
		inv.add(t, group)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, err)
	}
	for _, m := range bare {
		t, ok := inv.byName[m.name]
		if !ok {
			t = &target{name: m.name, chain: m.name, settings: map[string]string{}}
			if _, err := parseChain(t.chain); err != nil {
				return nil, usagef("inventory %s, line %d: target %s: %v", path, m.line, m.name, err)
			}
			inv.add(t, m.group)
			continue
		}
		if m.group != "" && !slices.Contains(inv.groups[m.group], t) {
			inv.groups[m.group] = append(inv.groups[m.group], t)
		}
	}
	return inv, nil
}

// add records a new target, in group g when g is not "".
func (inv *inventory) add(t *target, g string) {
	inv.targets = append(inv.targets, t)
	inv.byName[t.name] = t
	inv.groups["all"] = append(inv.groups["all"], t)
	if g != "" {
		inv.groups[g] = append(inv.groups[g], t)
	}
}

func sortedKeys() []string {
	var keys []string
	for k := range settingKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// line is t as an inventory line, so that a retry file read with -i
// reaches the same targets with the same settings.
func (t *target) line() string {
	parts := []string{t.name}
	if t.chain != t.name {
		parts = append(parts, t.chain)
	}
	for _, k := range sortedKeysOf(t.settings) {
		parts = append(parts, k+"="+t.settings[k])
	}
	return strings.Join(parts, " ")
}

func sortedKeysOf(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// looksLikeChain reports a -t value that is a chain rather than an
// inventory name: it has several hops, a method, a user or a port.
func looksLikeChain(v string) bool {
	return v == "local" || strings.ContainsAny(v, ",@:")
}

// resolveTargets turns the -t values and the inventory into the targets to
// run in, each once, in the order given. Without -t, every inventory
// target; without either, one local context.
func resolveTargets(values []string, inventoryPath string) ([]*target, error) {
	var inv *inventory
	if inventoryPath != "" {
		if inventoryPath == "-" || strings.HasPrefix(inventoryPath, "-") {
			return nil, usagef("-i %s: -i takes an inventory FILE (to forward stdin from a terminal, use --stdin)", inventoryPath)
		}
		var err error
		if inv, err = readInventory(inventoryPath); err != nil {
			return nil, err
		}
		if len(values) == 0 {
			if len(inv.targets) == 0 {
				return nil, usagef("-i %s: the inventory lists no targets", inventoryPath)
			}
			return inv.targets, nil
		}
	}
	if len(values) == 0 {
		values = []string{"local"}
	}
	var out []*target
	seen := map[string]bool{}
	add := func(ts ...*target) {
		for _, t := range ts {
			if !seen[t.name] {
				seen[t.name] = true
				out = append(out, t)
			}
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if g, ok := strings.CutPrefix(v, "@"); ok {
			if inv == nil {
				return nil, usagef("-t %s: a group needs an inventory (-i FILE)", v)
			}
			ts, ok := inv.groups[g]
			if !ok {
				return nil, usagef("-t %s: inventory %s has no group %q (groups: %s)", v, inv.path, g, strings.Join(inv.groupNames(), ", "))
			}
			add(ts...)
			continue
		}
		if inv != nil {
			if t, ok := inv.byName[v]; ok {
				add(t)
				continue
			}
			if ts, ok := inv.groups[v]; ok {
				add(ts...)
				continue
			}
			if !looksLikeChain(v) {
				return nil, usagef("-t %s: inventory %s has no target or group of that name (for an ssh host not in it, write user@%s or ssh://%s)", v, inv.path, v, v)
			}
		}
		if _, err := parseChain(v); err != nil {
			return nil, err
		}
		add(&target{name: v, chain: v, settings: map[string]string{}})
	}
	return out, nil
}

func (inv *inventory) groupNames() []string {
	var names []string
	for g := range inv.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}
