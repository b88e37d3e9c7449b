package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	inv "github.com/mitogo/mitogo/inventory"
)

// target is one place a command runs in: a name for output and reports,
// the chain that reaches it, and the settings that apply to its hops.
type target struct {
	name     string
	chain    string
	settings map[string]string // inventory settings, by key (see inventory.SettingKeys)
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
		return nil, usagef("-i %s: %v", path, err)
	}
	defer f.Close()
	inv, err := parseInventory(path, f)
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// parseInventory reads an inventory (package inventory's format), with
// each target's chain checked as -t checks it.
func parseInventory(path string, r io.Reader) (*inventory, error) {
	parsed, err := inv.Parse(path, r, func(chain string) error {
		_, err := parseChain(chain)
		return err
	})
	if errors.Is(err, inv.ErrSyntax) {
		return nil, usagef("%v", err)
	}
	if err != nil {
		return nil, err
	}
	out := &inventory{path: path, byName: map[string]*target{}, groups: map[string][]*target{}}
	conv := map[*inv.Host]*target{}
	for _, h := range parsed.Hosts {
		t := &target{name: h.Name, chain: h.Chain, settings: h.Settings}
		conv[h] = t
		out.targets = append(out.targets, t)
		out.byName[t.name] = t
	}
	for g, hs := range parsed.Groups {
		ts := []*target{}
		for _, h := range hs {
			ts = append(ts, conv[h])
		}
		out.groups[g] = ts
	}
	return out, nil
}

// line is t as an inventory line, so that a retry file read with -i
// reaches the same targets with the same settings.
func (t *target) line() string {
	return (&inv.Host{Name: t.name, Chain: t.chain, Settings: t.settings}).Line()
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
			return nil, usagef("-i %s: -i takes an inventory FILE, and --stdin forwards stdin from a terminal", inventoryPath)
		}
		if _, err := os.Stat(inventoryPath); err != nil {
			return nil, usagef("-i %s: %v; -i names an inventory file, and --stdin forwards stdin from a terminal", inventoryPath, err)
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
	add := func(key func(*target) string, ts ...*target) {
		for _, t := range ts {
			if k := key(t); !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
	}
	byName := func(t *target) string { return "inventory " + t.name }
	for _, v := range values {
		v = strings.TrimSpace(v)
		if g, ok := strings.CutPrefix(v, "@"); ok {
			if inv == nil {
				return nil, usagef("-t %s: a group needs an inventory: -i FILE", v)
			}
			ts, ok := inv.groups[g]
			if !ok {
				return nil, usagef("-t %s: inventory %s has no group %q; its groups: %s", v, inv.path, g, strings.Join(inv.groupNames(), ", "))
			}
			add(byName, ts...)
			continue
		}
		if inv != nil {
			if t, ok := inv.byName[v]; ok {
				add(byName, t)
				continue
			}
			if ts, ok := inv.groups[v]; ok {
				add(byName, ts...)
				continue
			}
			if !looksLikeChain(v) {
				return nil, usagef("-t %s: inventory %s has no target or group of that name; for an ssh host not in it, write user@%s or ssh://%s", v, inv.path, v, v)
			}
		}
		hops, err := parseChain(v)
		if err != nil {
			return nil, err
		}
		add(func(*target) string { return chainKey(hops) }, &target{name: v, chain: v, settings: map[string]string{}})
	}
	return out, nil
}

// chainKey is a chain in the form that compares it: its hops as parsed,
// so that "ssh://root@web1" and "root@web1" are one target, and "local"
// and "ssh://local" two.
func chainKey(hops []hop) string {
	var b strings.Builder
	for _, h := range hops {
		fmt.Fprintf(&b, "%s|%s|%s,", h.kind, h.user, h.target)
	}
	return b.String()
}

func (inv *inventory) groupNames() []string {
	var names []string
	for g := range inv.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}
