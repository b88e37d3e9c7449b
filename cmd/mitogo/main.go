// Command mitogo runs commands and registered functions in contexts: copies
// of itself that it starts locally, over ssh and through sudo, su and doas,
// and talks to over a stream. It is also the child program: its main calls
// actors.Main first.
//
//	mitogo run [-t TARGET]... [-i INVENTORY] [--shell] [--timeout D] [--] CMD [ARG...]
//	mitogo call [-t TARGET]... [-i INVENTORY] FUNCTION [JSON-ARGS]
//	mitogo list
//	mitogo rsync|scp [-t CHAIN] [--] TOOL-ARGS...
//	mitogo cache [-t CHAIN] [--prune]
//	mitogo attach --socket PATH [-t CONTEXT] call FUNCTION [JSON-ARGS] | run [--] CMD... | contexts
//	mitogo debug [-t CHAIN | --socket PATH [-t CONTEXT]] [--goroutines|--table|--streams|--calls|--heap FILE|--cpu FILE] [--json]
//	mitogo version [--json]
//
// run and call work in many targets at once (an inventory, --forks,
// prefixed, --group or --json output, a summary, --retry-file; see
// fleethelp.go). Exit status: run exits with the command's status (128+n
// when signal n killed it); 255 when a target could not be reached, 124
// when --timeout passed, 127 when the command does not exist (with many
// targets, in that order of precedence, else the highest status); the
// other commands that connect exit 255 too when their target could not be
// reached; other errors exit 1, usage errors 2, and after the contexts were shut down,
// 130 on SIGINT (Ctrl-C) and 143 on SIGTERM (128 + the signal's number).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
	_ "github.com/mitogo/mitogo/builtins" // the functions every context serves
)

// Exit statuses.
const (
	exitError = 1
	exitUsage = 2
)

func main() {
	actors.Main() // serves as a child context when started as one
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a command runs with.
type env struct {
	stdin          *os.File
	stdout, stderr io.Writer
	verbose        int
	uploads        *uploadLine // on a terminal: the progress of uploads (set by newRouter)
}

// command is one subcommand.
type command struct {
	name    string
	aliases []string
	summary string
	help    string // description and example, printed under the flags' usage line
	usage   string // the argument synopsis
	// flags registers the command's flags into o.
	flags func(fs *flag.FlagSet, e *env, o *options)
	// run runs it with the flags parsed into o and the other arguments.
	run func(ctx context.Context, e *env, o *options, args []string) error
}

var commands []*command

func init() {
	commands = []*command{runCommand, callCommand, listCommand, rsyncCommand, scpCommand, pushCommand, pullCommand, cacheCommand, serveCommand, clusterCommand, attachCommand, debugCommand, versionCommand}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

const topUsage = `mitogo runs commands and functions in contexts: copies of itself that it
starts on this machine, over ssh and through sudo, su and doas, chained into
a tree it routes messages through. Nothing is installed on the far side but
/bin/sh: mitogo copies itself there.

Usage:
  mitogo [-v] COMMAND [ARGS]
  mitogo --version

Commands:
%s
Run 'mitogo COMMAND --help' for a command's flags and an example.

Examples:
  mitogo run -t local,local -- uname -a
  mitogo run -t deploy@web1,sudo://root -- systemctl status nginx
  mitogo run -i hosts.txt -t @web --shell 'df -h / | tail -1'
  mitogo rsync -t ssh://web1,sudo://www-data -- -a ./site/ target:/var/www/

Caches: every account mitogo runs in keeps the builds sent to it in
${XDG_CACHE_HOME:-~/.cache}/mitogo (/tmp/mitogo-UID when it does not own its
HOME), and this machine keeps there the builds it sent, to send the next one
as a delta. Each time a new build lands in a cache, the cache keeps its %d
most recently used builds, any used in the last %s and any running, and
removes the others. To see a cache, or prune it now:
  mitogo cache --prune                              this account's, here
  mitogo cache -t deploy@web1,sudo://root --prune   root's on web1
`

func printTopUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands {
		name := c.name
		if len(c.aliases) > 0 {
			name += " (" + strings.Join(c.aliases, ", ") + ")"
		}
		fmt.Fprintf(&b, "  %-17s %s\n", name, c.summary)
	}
	fmt.Fprintf(&b, "  %-17s %s\n", "help [COMMAND]", "show help")
	fmt.Fprintf(w, topUsage, b.String(), bootstrap.KeepBuilds, inWords(bootstrap.PruneGrace))
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// unreachableError is a target that could not be reached: its message,
// and exit status 255, as ssh.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }

// Unwrap returns why the target could not be reached.
func (e *unreachableError) Unwrap() error { return e.err }

// exitStatus ends the program with a status, without a message.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// cli runs the command line args and returns the exit status.
func cli(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("mitogo", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.Var((*verbosity)(&e.verbose), "v", "")
	showVersion := global.Bool("version", false, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printTopUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "mitogo: %v (see mitogo --help)\n", err)
		return exitUsage
	}
	args = global.Args()
	if *showVersion {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "mitogo: --version takes no arguments (for JSON: mitogo version --json)\n")
			return exitUsage
		}
		args = []string{"version"}
	}
	if len(args) == 0 {
		printTopUsage(stderr)
		return exitUsage
	}
	name, args := args[0], args[1:]
	if name == "help" {
		if len(args) == 0 {
			printTopUsage(stdout)
			return 0
		}
		c := lookup(args[0])
		if c == nil {
			fmt.Fprintf(stderr, "mitogo: no command %q (commands: %s)\n", args[0], commandNames())
			return exitUsage
		}
		printCommandUsage(stdout, c)
		return 0
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "mitogo: no command %q (commands: %s; see mitogo --help)\n", name, commandNames())
		return exitUsage
	}

	// The first SIGINT or SIGTERM cancels ctx: the command stops, and the
	// contexts are shut down in order. A second one kills mitogo at once
	// (its children notice their stream closing and exit too).
	ctx, stop := notifySignals()
	defer stop()

	var o options
	fs := c.flagSet(e, &o)
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		err = &usageError{err.Error()}
	}
	if err == nil {
		err = checkDurations(fs)
	}
	if err == nil {
		err = c.run(ctx, e, &o, fs.Args())
	}
	var status exitStatus
	var uerr *usageError
	var unreachable *unreachableError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printCommandUsage(stdout, c)
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "mitogo %s: %s (see mitogo %s --help)\n", c.name, uerr.msg, c.name)
		return exitUsage
	case errors.As(err, &status):
		return int(status)
	case ctx.Err() != nil:
		return interruptStatus(ctx)
	case errors.As(err, &unreachable):
		fmt.Fprintf(stderr, "mitogo: %s\n", userLine(err))
		return exitUnreachable
	default:
		fmt.Fprintf(stderr, "mitogo: %s\n", userLine(err))
		return exitError
	}
}

// checkDurations refuses a negative duration given to any flag, and a zero
// --connect-timeout, which would end every connection before it began: the
// flag package takes both.
func checkDurations(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		switch d, ok := g.Get().(time.Duration); {
		case !ok:
		case d < 0:
			err = usagef("--%s %v: a duration cannot be negative", f.Name, d)
		case d == 0 && f.Name == "connect-timeout":
			err = usagef("--connect-timeout 0: want a positive duration, e.g. 10s")
		}
	})
	return err
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: mitogo %s %s\n\n%s", c.name, c.usage, c.help)
	fs := c.flagSet(&env{}, new(options))
	if hasFlags(fs) {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// oneLine is err's text without the "mitogo: " prefix the actors errors
// carry (ours adds it), on one line. Contexts in it are named as their
// chains name them: package actors names a context in its errors without
// the "#ID" that tells it from a live namesake in log records.
func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "mitogo: ")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// binaryFlag collects --binary PLATFORM=PATH.
type binaryFlag map[string]string

func (b *binaryFlag) String() string {
	if b == nil {
		return ""
	}
	var parts []string
	for p, path := range *b {
		parts = append(parts, p+"="+path)
	}
	return strings.Join(parts, ",")
}

func (b *binaryFlag) Set(s string) error {
	platform, path, ok := strings.Cut(s, "=")
	if !ok || strings.Count(platform, "/") != 1 || path == "" {
		return fmt.Errorf("want PLATFORM=PATH, e.g. linux/arm64=./mitogo-arm64")
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if *b == nil {
		*b = binaryFlag{}
	}
	(*b)[platform] = path
	return nil
}

// verbosity counts -v flags: none Warn, one Info, two Debug.
type verbosity int

// defaultConnectTimeout is --connect-timeout's default.
const defaultConnectTimeout = 30 * time.Second

func (v *verbosity) String() string {
	if v == nil {
		return "0"
	}
	return fmt.Sprint(int(*v))
}

func (v *verbosity) IsBoolFlag() bool { return true }

func (v *verbosity) Set(s string) error {
	switch s {
	case "true":
		*v++
	case "false":
		*v = 0
	default:
		return fmt.Errorf("-v takes no value")
	}
	return nil
}

func (e *env) logLevel() slog.Level {
	switch {
	case e.verbose >= 2:
		return slog.LevelDebug
	case e.verbose == 1:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// logger writes records, this process's and the contexts', to stderr.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{
		Level: e.logLevel(),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && e.verbose < 2 {
				return slog.Attr{} // times only in debug output
			}
			return a
		},
	}))
}

// options are the commands' flags.
type options struct {
	targets        stringList // -t, repeatable
	timeout        time.Duration
	connectTimeout time.Duration

	identity, knownHosts, hostKeyPolicy, passwordEnv string // ssh hops
	askPassword                                      bool
	sudoPasswordEnv                                  string // sudo, su, doas hops
	askSudoPassword                                  bool
	preserveEnv, login                               bool
	binaries                                         binaryFlag // every hop that runs stage 1
	heartbeat                                        heartbeatFlag

	fleet fleetOptions // run, call: many targets

	stdinForce, stdinNever bool // run --stdin, -n
	shell                  bool // run --shell
	long                   bool // list -l
	prune                  bool // cache --prune
	json                   bool // version --json

	copy copyFlags // push, pull

	nats natsOptions // serve, cluster, and run and call with --nats

	attach attachFlags // attach, debug
}

// stringList collects a repeatable flag's values.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}

func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// connectFlags registers the flags of every command that connects.
func (o *options) connectFlags(fs *flag.FlagSet, e *env, withTimeout bool) {
	fs.Var(&o.targets, "t", "the target: hops joined by commas, e.g. local,local or deploy@web1,sudo://root (supported: local, [user@]host[:port] or ssh://[user@]host[:port], openssh://..., sudo://[user], su://[user], doas://[user]); default local")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", defaultConnectTimeout, "bound each hop's connection")
	fs.StringVar(&o.identity, "identity", "", "ssh hops: the private key to log in with (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa and the agent)")
	fs.StringVar(&o.knownHosts, "known-hosts", "", "ssh hops: the known_hosts file (default ~/.ssh/known_hosts)")
	fs.StringVar(&o.hostKeyPolicy, "host-key-policy", "strict", "ssh hops: strict (refuse unknown keys), accept-new (record them) or ignore")
	fs.StringVar(&o.passwordEnv, "password-env", "", "ssh hops: read the login password from this environment variable (never give it on the command line)")
	fs.BoolVar(&o.askPassword, "ask-password", false, "ssh hops: ask for the login password on the terminal")
	fs.StringVar(&o.sudoPasswordEnv, "sudo-password-env", "", "sudo, su and doas hops: answer the password prompt with this environment variable's value")
	fs.BoolVar(&o.askSudoPassword, "ask-sudo-password", false, "sudo, su and doas hops: ask for the password on the terminal, once for all of them")
	fs.BoolVar(&o.preserveEnv, "preserve-env", false, "sudo and su hops: keep the caller's environment (sudo -E, su -m)")
	fs.Var(&o.binaries, "binary", "for far sides of another platform: PLATFORM=PATH, a build of mitogo for it on this machine, e.g. linux/arm64=./mitogo-arm64 (repeatable)")
	fs.Var(&o.heartbeat, "heartbeat", heartbeatUsage)
	fs.BoolVar(&o.login, "login", false, "sudo and su hops: start the target user's login shell first (sudo -i, su -l)")
	if withTimeout {
		fs.DurationVar(&o.timeout, "timeout", 0, "give up (and kill what runs) after this long, e.g. 30s; 0: no limit")
	}
	fs.Var((*verbosity)(&e.verbose), "v", "log more: -v info, -v -v debug")
}

// flagSet returns c's flag set, bound to e and o. It prints nothing: errors
// are reported on one line, help on stdout.
func (c *command) flagSet(e *env, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("mitogo "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs, e, o)
	}
	return fs
}

// session is a router and the context at the end of the chain.
type session struct {
	r      *actors.Router
	target *actors.Context
}

// connect builds the router and the chain of contexts the one -t names.
func connect(ctx context.Context, e *env, o *options) (*session, error) {
	if len(o.targets) > 1 {
		return nil, usagef("-t: this command takes one target, got %d", len(o.targets))
	}
	ts, err := resolveTargets(o.targets, "")
	if err != nil {
		return nil, err
	}
	plan, err := o.plan(ts)
	if err != nil {
		return nil, err
	}
	r, err := newRouter(e)
	if err != nil {
		return nil, err
	}
	_, c, err := plan[0].connect(ctx, r)
	if err != nil {
		r.Shutdown(ctx)
		return nil, &unreachableError{err}
	}
	return &session{r: r, target: c}, nil
}

// newRouter is the master's router, logging to stderr; on a terminal it
// shows the progress of uploads of mitogo (e.uploads).
func newRouter(e *env) (*actors.Router, error) {
	logger := e.logger()
	slog.SetDefault(logger)
	opts := []actors.Option{actors.WithLogger(logger), actors.WithLogLevel(e.logLevel())}
	if isTerminalWriter(e.stderr) {
		e.uploads = &uploadLine{w: e.stderr}
		opts = append(opts, actors.WithUploadProgress(e.uploads.report))
	}
	return actors.NewRouter(opts...)
}

// close shuts the tree down in order, children first, killing what does
// not stop within a few seconds.
func (s *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.r.Shutdown(ctx)
}
