package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/bootstrap"
)

func TestContainerArgv(t *testing.T) {
	t.Setenv("LC_ALL", "")
	stage1 := bootstrap.Stage1()
	local := "unset LC_ALL; " + stage1
	for _, tc := range []struct {
		name string
		argv []string
		want []string
	}{
		{"podman", ExecArgv(Spec{Method: Podman, Target: "web"}), []string{"podman", "exec", "-i", "web", "/bin/sh", "-c", stage1}},
		{"podman user tool", ExecArgv(Spec{Method: Podman, Target: "web", User: "bob", Tool: "/opt/podman"}),
			[]string{"/opt/podman", "exec", "-i", "--user", "bob", "web", "/bin/sh", "-c", stage1}},
		{"docker", ExecArgv(Spec{Method: Docker, Target: "db", User: "1000:1000"}),
			[]string{"docker", "exec", "-i", "--user", "1000:1000", "db", "/bin/sh", "-c", stage1}},
		{"kubectl", KubectlArgv(Spec{Method: Kubectl, Target: "web-0"}),
			[]string{"kubectl", "exec", "-i", "web-0", "--", "/bin/sh", "-c", stage1}},
		{"kubectl container namespace context", KubectlArgv(Spec{Method: Kubectl, Target: "web-0/app", Namespace: "prod", KubeContext: "east"}),
			[]string{"kubectl", "exec", "-i", "--context", "east", "--namespace", "prod", "web-0", "--container", "app", "--", "/bin/sh", "-c", stage1}},
		{"lxc", LXCArgv(Spec{Method: LXC, Target: "c1"}), []string{"lxc-attach", "-n", "c1", "--", "/bin/sh", "-c", local}},
		{"nsenter", NsenterArgv(Spec{Method: Nsenter, Target: "podman:web"}, "42"),
			[]string{"nsenter", "-t", "42", "-a", "-r", "-w", "--", "/bin/sh", "-c", local}},
		{"chroot", ChrootArgv(Spec{Method: Chroot, Target: "/srv/root"}), []string{"chroot", "/srv/root", "/bin/sh", "-c", local}},
		{"chroot user", ChrootArgv(Spec{Method: Chroot, Target: "/srv/root", User: "bob"}),
			[]string{"chroot", "--userspec=bob", "/srv/root", "/bin/sh", "-c", local}},
	} {
		if !slices.Equal(tc.argv, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.argv, tc.want)
		}
	}
}

func TestPIDArgv(t *testing.T) {
	for kind, want := range map[string][]string{
		Podman: {"podman", "inspect", "--type", "container", "--format", "{{.State.Pid}}", "web"},
		Docker: {"docker", "inspect", "--type", "container", "--format", "{{.State.Pid}}", "web"},
		LXC:    {"lxc-info", "-n", "web", "-p", "-H"},
	} {
		got, err := PIDArgv(kind, "web")
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q %v, want %q", kind, got, err, want)
		}
	}
	if _, err := PIDArgv("jail", "web"); !errors.Is(err, ErrBadOption) {
		t.Errorf("unknown kind: %v, want ErrBadOption", err)
	}
}

func TestContainerNames(t *testing.T) {
	for _, tc := range []struct {
		s    Spec
		want string
	}{
		{Spec{Method: Podman, Target: "web"}, "podman:web"},
		{Spec{Method: Docker, Target: "web", User: "bob"}, "docker:bob@web"},
		{Spec{Method: Kubectl, Target: "web-0/app", Namespace: "prod"}, "kubectl:prod:web-0:app"},
		{Spec{Method: Kubectl, Target: "web-0"}, "kubectl:web-0"},
		{Spec{Method: Nsenter, Target: "podman:web"}, "nsenter:podman:web"},
		{Spec{Method: Chroot, Target: "/srv/root"}, "chroot:/srv/root"},
	} {
		if got := method(t, tc.s.Method).DefaultName(tc.s, 3); got != tc.want {
			t.Errorf("%+v: name %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestContainerOptions(t *testing.T) {
	for _, tc := range []struct {
		method string
		s      Spec
		given  Option
		hint   string // "" when the spec is valid
	}{
		{Podman, Spec{Target: "web", User: "bob", Tool: "/x"}, OptUser | OptTool | OptToolEnv | OptNoCache, ""},
		{Podman, Spec{Target: "web"}, OptPassword, "Password does not apply"},
		{Podman, Spec{}, 0, "needs a target"},
		{Docker, Spec{Target: "-v"}, 0, "starts with '-'"},
		{Docker, Spec{Target: "web", ToolEnv: []string{"DOCKER_HOST"}}, OptToolEnv, "not NAME=VALUE"},
		{LXC, Spec{Target: "c1"}, OptUser, "sudo://USER"},
		{Nsenter, Spec{Target: "1"}, OptUser, "sudo://USER"},
		{Kubectl, Spec{Target: "p"}, OptUser, "no user option"},
		{Kubectl, Spec{Target: "p"}, OptNamespace | OptKubeContext, ""},
		{Podman, Spec{Target: "web"}, OptNamespace, "Namespace does not apply"},
		{Chroot, Spec{Target: "/srv"}, OptUser, ""},
	} {
		m := method(t, tc.method)
		tc.s.Method = tc.method
		err := m.Validate(tc.s, tc.given)
		switch {
		case tc.hint == "" && err != nil:
			t.Errorf("%s %+v: %v", tc.method, tc.s, err)
		case tc.hint != "" && (!errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), tc.hint)):
			t.Errorf("%s %+v: %v, want ErrBadOption saying %q", tc.method, tc.s, err, tc.hint)
		}
	}
}

// What the tools print when they cannot run stage 1 (copied from podman
// 4.3, docker 20.10, lxc 5.0, util-linux 2.38, coreutils 9.1 and kubectl)
// is read as a cause a caller can test.
func TestExplainContainer(t *testing.T) {
	for _, tc := range []struct {
		method, output string
		want           error
	}{
		{Podman, `Error: no container with name or ID "nope" found: no such container`, ErrNoContainer},
		{Podman, `Error: can only create exec sessions on running containers: container state improper`, ErrContainerNotRunning},
		{Podman, "Error: runc: exec failed: unable to start container process: exec: \"/bin/sh\": stat /bin/sh: no such file or directory: OCI runtime attempted to invoke a command that was not found", ErrNoShell},
		{Podman, `Error: unable to find user nobody: no matching entries in passwd file`, ErrUnknownUser},
		{Docker, `Error: No such container: nope`, ErrNoContainer},
		{Docker, `Error response from daemon: Container e414 is not running`, ErrContainerNotRunning},
		{Docker, `OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown`, ErrNoShell},
		{Docker, `Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?`, ErrExecRefused},
		{Docker, `permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock`, ErrExecRefused},
		{LXC, "lxc-attach: c1: ../src/lxc/attach.c: get_attach_context: 406 Connection refused - Failed to get init pid\nlxc-attach: c1: ../src/lxc/attach.c: lxc_attach: 1470 Connection refused - Failed to get attach context", ErrContainerNotRunning},
		{LXC, `lxc-attach: c1: ../src/lxc/attach.c: lxc_attach_run_command: 1841 No such file or directory - Failed to exec "/bin/sh"`, ErrNoShell},
		{Nsenter, `nsenter: stat of /proc/999999/ns/user failed: No such file or directory`, ErrNoContainer},
		{Nsenter, `nsenter: failed to execute /bin/sh: No such file or directory`, ErrNoShell},
		{Nsenter, `nsenter: reassociate to namespace 'ns/ipc' failed: Operation not permitted`, ErrExecRefused},
		{Chroot, `chroot: cannot change root directory to '/nope': No such file or directory`, ErrNoContainer},
		{Chroot, `chroot: cannot change root directory to '/srv': Operation not permitted`, ErrExecRefused},
		{Chroot, `chroot: failed to run command '/bin/sh': No such file or directory`, ErrNoShell},
		{Chroot, `chroot: invalid user`, ErrUnknownUser},
		{Kubectl, `Error from server (NotFound): pods "web-0" not found`, ErrNoContainer},
		{Podman, "", nil},
		{Podman, "some line the child printed", nil},
	} {
		s := Spec{Method: tc.method, Target: "x"}
		reason, cause := explainContainer(s, tc.output)
		if cause != tc.want {
			t.Errorf("%s %q: cause %v, want %v", tc.method, tc.output, cause, tc.want)
		}
		if cause != nil && !strings.HasPrefix(reason, tc.method+" x: "+cause.Error()) {
			t.Errorf("%s: reason %q", tc.method, reason)
		}
	}
}

// A tool that is not installed is ErrToolMissing, through Explain too.
func TestToolMissing(t *testing.T) {
	for _, name := range []string{Podman, Docker, Kubectl, LXC, Nsenter, Chroot} {
		m := method(t, name)
		s := Spec{Method: name, Target: "1", Tool: "/nonexistent/tool"}
		_, err := m.Start(context.Background(), s, Env{})
		if !errors.Is(err, ErrToolMissing) {
			t.Errorf("%s: %v, want ErrToolMissing", name, err)
			continue
		}
		if _, cause := m.Explain(s, Attempt{Err: err}); cause != ErrToolMissing {
			t.Errorf("%s: Explain gives cause %v", name, cause)
		}
	}
	// nsenter's lookup of a container's PID needs its tool too.
	s := Spec{Method: Nsenter, Target: "podman:web", ToolEnv: []string{"PATH=/nonexistent"}}
	t.Setenv("PATH", "/nonexistent")
	if _, err := method(t, Nsenter).Start(context.Background(), s, Env{}); !errors.Is(err, ErrToolMissing) {
		t.Errorf("nsenter podman:web without podman: %v", err)
	}
}

// docker exec prints its refusals on stdout, which stage 1 reads: they
// reach Explain in the bootstrap error, not in the output.
func TestExplainDockerStdout(t *testing.T) {
	m := method(t, Docker)
	s := Spec{Method: Docker, Target: "web", User: "bob"}
	for said, want := range map[string]error{
		"unable to find user bob: no matching entries in passwd file":                                                                                ErrUnknownUser,
		`OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown`: ErrNoShell,
	} {
		err := fmt.Errorf("%w: stage 1 did not start: %w; it printed %q", ErrBootstrap, io.EOF, said)
		if _, cause := m.Explain(s, Attempt{Err: err, Status: "exit status 126"}); cause != want {
			t.Errorf("%q: cause %v, want %v", said, cause, want)
		}
	}
}
