package connect

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// The methods that enter a container or another process's namespaces on
// the machine of the context that runs them.
const (
	Podman  = "podman"  // podman exec -i CONTAINER
	Docker  = "docker"  // docker exec -i CONTAINER
	Kubectl = "kubectl" // kubectl exec -i POD [-c CONTAINER]
	LXC     = "lxc"     // lxc-attach -n NAME
	Nsenter = "nsenter" // nsenter -t PID -a
	Chroot  = "chroot"  // chroot DIR
)

// Each runs /bin/sh -c STAGE1 inside, as over SSH: the container has its
// own filesystem, so stage 1 uploads the binary the first time and caches
// it there, in ${XDG_CACHE_HOME:-$HOME/.cache}/mitogo when the user owns
// $HOME, else in /tmp/mitogo-<uid> (a container user whose HOME is "/" or
// not theirs). A container with neither fails with ErrBootstrap ("cache
// directory ... is not ours").
//
// All but chroot are Remote: the child is in another PID namespace, where
// the pid it reports means nothing here, and a container that is paused
// or frozen is noticed by the heartbeat. A container stopped or removed
// kills the exec'd child; its stream ends, and what waits on it fails with
// *ChannelError.

func init() {
	common := OptTool | OptToolEnv | OptNoCache | OptBinaries
	const changeAfter = "put sudo://USER (or su, doas) after it to change account"
	register(&Method{Name: Podman, Target: "CONTAINER", Shell: true, Remote: true, Options: common | OptUser,
		check: needTarget(Podman), name: targetName(Podman), subject: targetSubject(Podman),
		start: startTool(ExecArgv), explain: explainContainer})
	register(&Method{Name: Docker, Target: "CONTAINER", Shell: true, Remote: true, Options: common | OptUser,
		check: needTarget(Docker), name: targetName(Docker), subject: targetSubject(Docker),
		start: startTool(ExecArgv), explain: explainContainer})
	register(&Method{Name: Kubectl, Target: "POD[/CONTAINER]", Shell: true, Remote: true, Options: common | OptNamespace | OptKubeContext,
		hints: map[Option]string{OptUser: "kubectl exec has no user option; " + changeAfter},
		check: needTarget(Kubectl), name: kubectlName, subject: targetSubject(Kubectl),
		start: startTool(KubectlArgv), explain: explainContainer})
	register(&Method{Name: LXC, Target: "NAME", Shell: true, Remote: true, Options: common,
		hints: map[Option]string{OptUser: "lxc-attach takes numeric ids only; " + changeAfter},
		check: needTarget(LXC), name: targetName(LXC), subject: targetSubject(LXC),
		start: startTool(LXCArgv), explain: explainContainer})
	register(&Method{Name: Nsenter, Target: "PID|podman:NAME|docker:NAME|lxc:NAME", Shell: true, Remote: true, Options: common,
		hints: map[Option]string{OptUser: "nsenter enters as the process's user; " + changeAfter},
		check: needTarget(Nsenter), name: targetName(Nsenter), subject: targetSubject(Nsenter),
		start: startNsenter, explain: explainContainer})
	register(&Method{Name: Chroot, Target: "DIR", Shell: true, Options: common | OptUser,
		check: needTarget(Chroot), name: targetName(Chroot), subject: targetSubject(Chroot),
		start: startTool(ChrootArgv), explain: explainContainer})
}

// needTarget refuses a spec without a target, or one that the tool would
// read as an option.
func needTarget(method string) func(Spec) error {
	return func(s Spec) error {
		switch {
		case s.Target == "":
			return fmt.Errorf("the %s method needs a target (%s)", method, targetWord(method))
		case strings.HasPrefix(s.Target, "-"):
			return fmt.Errorf("%s target %q starts with '-'", method, s.Target)
		}
		for _, kv := range s.ToolEnv {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("ToolEnv %q is not NAME=VALUE", kv)
			}
		}
		return nil
	}
}

func targetWord(method string) string {
	switch method {
	case Kubectl:
		return "POD or POD/CONTAINER"
	case Nsenter:
		return "a PID, or podman:NAME, docker:NAME, lxc:NAME"
	case Chroot:
		return "a directory"
	}
	return "a container"
}

// targetName is the default name: "podman:web", "podman:bob@web",
// "nsenter:1234", "chroot:/srv/root".
func targetName(method string) func(Spec) string {
	return func(s Spec) string {
		if s.User != "" {
			return method + ":" + s.User + "@" + s.Target
		}
		return method + ":" + s.Target
	}
}

// kubectlName is "kubectl:POD" or "kubectl:POD:CONTAINER", after the
// namespace when one is given ("kubectl:prod:POD").
func kubectlName(s Spec) string {
	n := "kubectl:"
	if s.Namespace != "" {
		n += s.Namespace + ":"
	}
	return n + strings.Replace(s.Target, "/", ":", 1)
}

func targetSubject(method string) func(Spec) string {
	return func(s Spec) string { return method + " " + s.Target }
}

func toolOr(s Spec, def string) string {
	if s.Tool != "" {
		return s.Tool
	}
	return def
}

// ExecArgv is podman's or docker's command line: exec -i, as User when
// one is given, /bin/sh -c STAGE1 in the container.
func ExecArgv(s Spec) []string {
	argv := []string{toolOr(s, s.Method), "exec", "-i"}
	if s.User != "" {
		argv = append(argv, "--user", s.User)
	}
	return append(argv, s.Target, "/bin/sh", "-c", bootstrap.Stage1())
}

// KubectlArgv is kubectl's command line: exec -i into POD (its first
// container, or CONTAINER of POD/CONTAINER), in Namespace and KubeContext
// when given.
func KubectlArgv(s Spec) []string {
	argv := []string{toolOr(s, "kubectl"), "exec", "-i"}
	if s.KubeContext != "" {
		argv = append(argv, "--context", s.KubeContext)
	}
	if s.Namespace != "" {
		argv = append(argv, "--namespace", s.Namespace)
	}
	pod, container, _ := strings.Cut(s.Target, "/")
	argv = append(argv, pod)
	if container != "" {
		argv = append(argv, "--container", container)
	}
	return append(argv, "--", "/bin/sh", "-c", bootstrap.Stage1())
}

// LXCArgv is lxc-attach's command line. lxc-attach keeps the caller's
// environment, so stage 1 puts the caller's LC_ALL back (the tool runs
// with LC_ALL=C).
func LXCArgv(s Spec) []string {
	return []string{toolOr(s, "lxc-attach"), "-n", s.Target, "--", "/bin/sh", "-c", restoreLocale(bootstrap.Stage1())}
}

// NsenterArgv is nsenter's command line for pid: every namespace of the
// process (-a), and its root and working directories (-r -w: a process
// that chroot'ed within its mount namespace is entered there too).
func NsenterArgv(s Spec, pid string) []string {
	return []string{toolOr(s, "nsenter"), "-t", pid, "-a", "-r", "-w", "--", "/bin/sh", "-c", restoreLocale(bootstrap.Stage1())}
}

// ChrootArgv is chroot's command line (coreutils), with --userspec when a
// User is given.
func ChrootArgv(s Spec) []string {
	argv := []string{toolOr(s, "chroot")}
	if s.User != "" {
		argv = append(argv, "--userspec="+s.User)
	}
	return append(argv, s.Target, "/bin/sh", "-c", restoreLocale(bootstrap.Stage1()))
}

// toolEnv is the environment added for the tool: LC_ALL=C, so that what it
// prints can be read, and the spec's ToolEnv.
func toolEnv(s Spec) []string { return append(slices.Clone(cLocale), s.ToolEnv...) }

// startTool starts the command line argv builds, after checking that its
// tool is there (ErrToolMissing).
func startTool(argv func(Spec) []string) func(context.Context, Spec, Env) (*transport.Child, error) {
	return func(_ context.Context, s Spec, e Env) (*transport.Child, error) {
		a := argv(s)
		if err := findTool(a[0]); err != nil {
			return nil, err
		}
		return transport.StartCommand(a, toolEnv(s), e.Direct)
	}
}

func findTool(tool string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrToolMissing, tool, err)
	}
	return nil
}

// explainContainer reads what podman, docker, kubectl, lxc-attach, nsenter
// and chroot print when they cannot run stage 1 (under LC_ALL=C where
// they have translations).
func explainContainer(s Spec, output string) (string, error) {
	low := strings.ToLower(output)
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(low, sub) {
				return true
			}
		}
		return false
	}
	who := targetSubject(s.Method)(s)
	var cause error
	switch {
	case strings.TrimSpace(output) == "":
		return "", nil
	case has("/bin/sh") && has("no such file", "not found", "failed to exec"):
		cause = ErrNoShell
	case has("is not running", "state improper", "failed to get init pid", "not running"):
		cause = ErrContainerNotRunning
	case has("unable to find user", "no matching entries in passwd", "invalid user", "no such user"):
		cause = ErrUnknownUser
	case has("no such container", "no container with name", "no such object", "(notfound)", "doesn't exist", "does not exist"),
		has("nsenter:") && has("/proc/") && has("no such file"), has("cannot change root directory") && has("no such file"):
		cause = ErrNoContainer
	case toolSaid(s.Method, lastLine(low)):
		cause = ErrExecRefused
	default:
		return "", nil
	}
	return fmt.Sprintf("%s: %v: %q", who, cause, lastLine(output)), cause
}

// toolPrefixes are how the lines each tool prints about its own failure
// begin (lower case); other lines are the far side's.
var toolPrefixes = map[string][]string{
	Podman:  {"error:"},
	Docker:  {"error", "cannot connect to the docker daemon", "permission denied", "oci runtime"},
	Kubectl: {"error"},
	LXC:     {"lxc-attach:"},
	Nsenter: {"nsenter:"},
	Chroot:  {"chroot:"},
}

// toolSaid reports a line the tool of method printed.
func toolSaid(method, line string) bool {
	for _, p := range toolPrefixes[method] {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}
