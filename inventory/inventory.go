// Package inventory reads mitogo's inventory files: the hosts a fleet
// command or a cluster of controllers works on, with their chains,
// per-host settings and groups.
//
// One host per line, "NAME [CHAIN] [KEY=VALUE...]"; "#" starts a comment;
// a "[GROUP]" line starts a group that the following lines belong to. A
// NAME alone that another line defines only adds it to the current group;
// a NAME alone that no line defines is a host whose chain is NAME. The
// group "all" holds every host.
//
//	web1 deploy@web1.example.com port=2222
//	db1  ssh://db1,sudo:postgres sudo-password-env=DB_PW
//	[web]
//	web1
package inventory

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSyntax is matched (errors.Is) by every error about an inventory's
// content, as opposed to one reading it.
var ErrSyntax = errors.New("inventory syntax")

// SyntaxError is an error in an inventory's content, with its line.
type SyntaxError struct {
	Path string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("inventory %s, line %d: %s", e.Path, e.Line, e.Msg)
}

// Is makes every SyntaxError match ErrSyntax.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// SettingKeys are the per-host settings an inventory line may give, and
// what each means.
var SettingKeys = map[string]string{
	"user":              "the first ssh hop's login user, when the chain does not name one",
	"port":              "the first ssh hop's port, when the chain does not give one",
	"identity":          "ssh hops: the private key file (as --identity)",
	"password-env":      "ssh hops: the environment variable holding the login password",
	"sudo-password-env": "sudo, su and doas hops: the variable holding their password",
	"host-key-policy":   "ssh hops: strict, accept-new or ignore (as --host-key-policy)",
	"known-hosts":       "ssh hops: the known_hosts file (as --known-hosts)",
	"connect-timeout":   "bound each hop's connection (as --connect-timeout)",
}

// Host is one inventory entry: the name results and errors use, the chain
// that reaches it, and its settings by key (see SettingKeys).
type Host struct {
	Name     string
	Chain    string
	Settings map[string]string
}

// NewHost returns a host whose chain is its name, without settings.
func NewHost(name string) *Host {
	return &Host{Name: name, Chain: name, Settings: map[string]string{}}
}

// Line is h as an inventory line, which Parse reads back as h.
func (h *Host) Line() string {
	parts := []string{h.Name}
	if h.Chain != h.Name {
		parts = append(parts, h.Chain)
	}
	for _, k := range sortedKeys(h.Settings) {
		parts = append(parts, k+"="+h.Settings[k])
	}
	return strings.Join(parts, " ")
}

// Inventory is a parsed inventory: hosts in file order, and groups.
type Inventory struct {
	Path   string
	Hosts  []*Host
	ByName map[string]*Host
	Groups map[string][]*Host // "all" holds every host
}

// CheckChain validates a host's chain while parsing; nil accepts any.
type CheckChain func(chain string) error

// Read parses the inventory file at path.
func Read(path string, check CheckChain) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f, check)
}

// Parse reads an inventory from r; path names it in errors. check, when
// not nil, validates each host's chain.
func Parse(path string, r io.Reader, check CheckChain) (*Inventory, error) {
	inv := &Inventory{Path: path, ByName: map[string]*Host{}, Groups: map[string][]*Host{}}
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
			return &SyntaxError{Path: path, Line: n, Msg: fmt.Sprintf(format, args...)}
		}
		if strings.HasPrefix(fields[0], "[") {
			if len(fields) != 1 || !strings.HasSuffix(fields[0], "]") || len(fields[0]) < 3 {
				return nil, bad("want a group as [NAME], got %q", strings.TrimSpace(line))
			}
			group = fields[0][1 : len(fields[0])-1]
			if group == "all" {
				return nil, bad("the group all is every target; name yours otherwise")
			}
			if _, ok := inv.Groups[group]; !ok {
				inv.Groups[group] = nil
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
		h := NewHost(name)
		rest := fields[1:]
		if !strings.Contains(rest[0], "=") {
			h.Chain, rest = rest[0], rest[1:]
		}
		for _, kv := range rest {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, bad("%q: want KEY=VALUE after the chain (keys: %s)", kv, strings.Join(sortedKeys(SettingKeys), ", "))
			}
			if _, known := SettingKeys[k]; !known {
				return nil, bad("unknown setting %q (keys: %s)", k, strings.Join(sortedKeys(SettingKeys), ", "))
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
			h.Settings[k] = v
		}
		if _, dup := inv.ByName[name]; dup {
			return nil, bad("target %q is defined twice", name)
		}
		if check != nil {
			if err := check(h.Chain); err != nil {
				return nil, bad("target %s: %v", name, err)
			}
		}
		inv.add(h, group)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, err)
	}
	for _, m := range bare {
		h, ok := inv.ByName[m.name]
		if !ok {
			h = NewHost(m.name)
			if check != nil {
				if err := check(h.Chain); err != nil {
					return nil, &SyntaxError{Path: path, Line: m.line, Msg: fmt.Sprintf("target %s: %v", m.name, err)}
				}
			}
			inv.add(h, m.group)
			continue
		}
		if m.group != "" && !slices.Contains(inv.Groups[m.group], h) {
			inv.Groups[m.group] = append(inv.Groups[m.group], h)
		}
	}
	return inv, nil
}

// add records a new host, in group g when g is not "".
func (inv *Inventory) add(h *Host, g string) {
	inv.Hosts = append(inv.Hosts, h)
	inv.ByName[h.Name] = h
	inv.Groups["all"] = append(inv.Groups["all"], h)
	if g != "" {
		inv.Groups[g] = append(inv.Groups[g], h)
	}
}

// GroupNames returns the inventory's group names, sorted.
func (inv *Inventory) GroupNames() []string {
	return sortedKeys(inv.Groups)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
