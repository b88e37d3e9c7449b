package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/fakessh"
)

var rsyncCommand = &command{
	name:    "rsync",
	summary: "copy files to or from a context with rsync, through the chain",
	usage:   "[-t CHAIN] [connect flags] [--] RSYNC-ARGS...",
	help: `Runs rsync here with mitogo as its ssh (fakessh): the far rsync runs in the
context at the end of CHAIN, whatever the hops (ssh, then sudo, su, doas),
with its stdin and stdout relayed through the tree. Name the far side with
any host name, e.g. target:PATH; a relative PATH is in the account's home,
as with ssh. rsync must be installed at both ends; mitogo exits with
rsync's exit status.

Examples:
  mitogo rsync -t ssh://deploy@web1,sudo://www-data -- -av ./site/ target:/var/www/site/
  mitogo rsync -t sudo://postgres -- -a target:backups/ ./backups/
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) { o.connectFlags(fs, e, false) },
	run: func(ctx context.Context, e *env, o *options, argv []string) error {
		return toolMain(ctx, e, o, "rsync", "-e", argv)
	},
}

var scpCommand = &command{
	name:    "scp",
	summary: "copy files to or from a context with scp, through the chain",
	usage:   "[-t CHAIN] [connect flags] [--] SCP-ARGS...",
	help: `Runs scp here with mitogo as its ssh program (fakessh), so the far side of
the copy is the context at the end of CHAIN. Name it with any host name,
e.g. target:PATH. In scp's default SFTP mode the context runs the host's
sftp-server (package openssh-sftp-server); scp -O runs scp there instead.

Examples:
  mitogo scp -t ssh://web1,sudo://root -- ./nginx.conf target:/etc/nginx/nginx.conf
  mitogo scp -t su://postgres --sudo-password-env PW -- -O target:dump.sql .
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) { o.connectFlags(fs, e, false) },
	run: func(ctx context.Context, e *env, o *options, argv []string) error {
		return toolMain(ctx, e, o, "scp", "-S", argv)
	},
}

// toolMain connects the chain, serves it to the ssh stand-in and runs tool
// with sshFlag naming the stand-in, then exits with the tool's status.
func toolMain(ctx context.Context, e *env, o *options, tool, sshFlag string, argv []string) error {
	if len(argv) == 0 {
		return usagef("no %s arguments given", tool)
	}
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s is not installed here: %w", tool, err)
	}
	s, err := connect(ctx, e, o)
	if err != nil {
		return err
	}
	defer s.close()
	srv, err := fakessh.Serve(s.r, s.target)
	if err != nil {
		return err
	}
	defer srv.Close()
	prog := srv.Program()
	if tool == "rsync" && strings.ContainsAny(prog, " '\"") {
		prog = "'" + strings.ReplaceAll(prog, "'", `'"'"'`) + "'" // rsync splits -e at spaces
	}
	cmd := exec.CommandContext(ctx, path, append([]string{sshFlag, prog}, argv...)...)
	cmd.Env = append(os.Environ(), srv.Env()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	// Interrupted (SIGINT, SIGTERM): the tool is asked to stop as a user
	// would ask it, then killed if it lingers.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus(128 + int(ws.Signal()))
		}
		return exitStatus(ee.ExitCode())
	}
	return err
}
