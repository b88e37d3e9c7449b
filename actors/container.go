package actors

import (
	"context"

	"github.com/mitogo/mitogo/connect"
)

// The container and namespace methods start a child inside a container,
// or in another process's namespaces, on the machine of the context they
// are made from (Via; this one by default): the tool runs /bin/sh -c
// STAGE1 there, which copies this program into the container's own cache
// the first time, as over SSH. The container needs /bin/sh and a libc
// this program can run with (none, for a static build). The cache is
// ${XDG_CACHE_HOME:-$HOME/.cache}/mitogo when the user owns $HOME, else
// /tmp/mitogo-<uid>; with neither writable the connection fails with
// ErrBootstrap.
//
// Their failures are *StreamError with a cause for errors.Is:
// ErrToolMissing, ErrNoContainer, ErrContainerNotRunning, ErrNoShell,
// ErrUnknownUser (User), ErrExecRefused (the daemon unreachable,
// permission denied). A container stopped or removed while its context
// runs ends the child: what waits on it fails with *ChannelError. Options
// for all: Tool (the path of the tool), ToolEnv (DOCKER_HOST,
// CONTAINER_HOST, KUBECONFIG), NoCache, Binaries, plus Via, Name,
// ConnectTimeout and Supervise.

// Podman starts a child context in a running podman container (podman
// exec -i), as User when given (a name or uid in the container). Rootless
// podman works as the user that runs it: make the connection Via a
// context of that user, or set CONTAINER_HOST with ToolEnv for a remote
// podman service. The default name is "podman:CONTAINER".
func (r *Router) Podman(ctx context.Context, container string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Podman, withTarget(container, opts))
}

// Docker starts a child context in a running docker container (docker
// exec -i), as User when given. DOCKER_HOST (ToolEnv) chooses the daemon.
// The default name is "docker:CONTAINER".
func (r *Router) Docker(ctx context.Context, container string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Docker, withTarget(container, opts))
}

// Kubectl starts a child context in a pod (kubectl exec -i POD), or in
// one container of it (target POD/CONTAINER), with Namespace and
// KubeContext when given; KUBECONFIG can be set with ToolEnv. Only its
// command line is tested (connect.KubectlArgv): mitogo's tests have no
// cluster to run it against. The default name is "kubectl:POD" (with
// ":CONTAINER", after "NAMESPACE:" when given).
func (r *Router) Kubectl(ctx context.Context, target string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Kubectl, withTarget(target, opts))
}

// LXC starts a child context in a running LXC container (lxc-attach -n
// NAME), as the container's root; put Sudo, Su or Doas after it to change
// account. lxc-attach cannot tell a container that does not exist from
// one that is stopped: both fail with ErrContainerNotRunning. The default
// name is "lxc:NAME".
func (r *Router) LXC(ctx context.Context, name string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.LXC, withTarget(name, opts))
}

// Nsenter starts a child context in every namespace of a process
// (nsenter -t PID -a): target is its PID, or "podman:NAME",
// "docker:NAME", "lxc:NAME" for the first process of that container (its
// PID looked up with that tool where the connection is made). It needs
// root there. The default name is "nsenter:TARGET".
func (r *Router) Nsenter(ctx context.Context, target string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Nsenter, withTarget(target, opts))
}

// Chroot starts a child context with dir as its root directory (chroot
// DIR), as User when given (chroot --userspec). It needs root, and dir
// needs /bin/sh, what this program links with, and /proc mounted (the
// child reads /proc/self/exe; without it the connection fails with
// ErrHandshake, the child's message in its Output). The child shares this
// machine's other namespaces: its processes are those of this host. The
// default name is "chroot:DIR".
func (r *Router) Chroot(ctx context.Context, dir string, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Chroot, withTarget(dir, opts))
}

func withTarget(target string, opts []ConnectOption) []ConnectOption {
	return append([]ConnectOption{func(c *connectConfig) { c.target = target }}, opts...)
}

// ToolEnv adds NAME=VALUE pairs to the environment of the tool a
// container method runs, in the context that runs it: DOCKER_HOST,
// CONTAINER_HOST, CONTAINERS_CONF, KUBECONFIG.
func ToolEnv(vars ...string) ConnectOption {
	return func(c *connectConfig) { c.toolEnv, c.given = append(c.toolEnv, vars...), c.given|connect.OptToolEnv }
}

// Namespace sets kubectl's --namespace.
func Namespace(ns string) ConnectOption {
	return func(c *connectConfig) { c.namespace, c.given = ns, c.given|connect.OptNamespace }
}

// KubeContext sets kubectl's --context (a context of the kubeconfig).
func KubeContext(name string) ConnectOption {
	return func(c *connectConfig) { c.kubeContext, c.given = name, c.given|connect.OptKubeContext }
}
