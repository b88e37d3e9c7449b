package connect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/mitogo/mitogo/transport"
)

// nsenter's target is a PID, or KIND:NAME: the first process of a podman,
// docker or lxc container, looked up with the kind's own tool (podman,
// docker, lxc-info from PATH, with the spec's ToolEnv: DOCKER_HOST and
// CONTAINER_HOST apply) just before nsenter starts.

// PIDArgv is the command line that prints the PID of the first process of
// container name, of kind podman, docker or lxc.
func PIDArgv(kind, name string) ([]string, error) {
	switch kind {
	case Podman, Docker:
		return []string{kind, "inspect", "--type", "container", "--format", "{{.State.Pid}}", name}, nil
	case LXC:
		return []string{"lxc-info", "-n", name, "-p", "-H"}, nil
	}
	return nil, fmt.Errorf("%w: nsenter target %q: want a PID, or podman:NAME, docker:NAME, lxc:NAME", ErrBadOption, kind+":"+name)
}

// nsenterPID returns the PID the spec's target names.
func nsenterPID(ctx context.Context, s Spec) (string, error) {
	if _, err := strconv.Atoi(s.Target); err == nil {
		return s.Target, nil
	}
	kind, name, _ := strings.Cut(s.Target, ":")
	argv, err := PIDArgv(kind, name)
	if err != nil {
		return "", err
	}
	if err := findTool(argv[0]); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Environ(), toolEnv(s)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	pid := strings.TrimSpace(out.String())
	if err != nil {
		low := strings.ToLower(errOut.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && (strings.Contains(low, "no such") || strings.Contains(low, "doesn't exist")) {
			return "", fmt.Errorf("%w: %s: %s", ErrNoContainer, s.Target, lastLine(errOut.String()))
		}
		return "", fmt.Errorf("finding the PID of %s: %w: %s", s.Target, err, lastLine(errOut.String()))
	}
	if n, err := strconv.Atoi(pid); err != nil || n <= 0 {
		return "", fmt.Errorf("%w: %s", ErrContainerNotRunning, s.Target)
	}
	return pid, nil
}

func startNsenter(ctx context.Context, s Spec, e Env) (*transport.Child, error) {
	pid, err := nsenterPID(ctx, s)
	if err != nil {
		return nil, err
	}
	argv := NsenterArgv(s, pid)
	if err := findTool(argv[0]); err != nil {
		return nil, err
	}
	return transport.StartCommand(argv, toolEnv(s), e.Direct)
}
