package main

// fleetHelp is the part of run's and call's help about many targets.
const fleetHelp = `
Targets: -t may be given many times. A TARGET is a chain of hops joined by
commas: local, [user@]host[:port] or an alias from ~/.ssh/config (ssh;
ssh:// may be written but is never needed), openssh://[user@]host[:port]
(the ssh program), sudo://[user], su://[user], doas://[user]. With an
inventory (-i FILE), -t NAME picks the target or group of that name in it,
-t @GROUP a group only; without -t every target in it runs. A target named
twice (-t local -t local, -t web1 -t ssh://web1, or by a name and a group)
runs once, as Ansible runs a host once: each target is one line of output
prefix, one result.

Inventory: one target per line, "NAME [CHAIN] [KEY=VALUE...]"; the chain
defaults to NAME. "#" starts a comment. A line "[GROUP]" starts a group:
the targets below it are in it, up to the next [GROUP]. A NAME alone that
another line defines adds that target to the current group too. Every
target is in the group all. Settings, which win over the flags:
  user=U               the first ssh hop's user, when the chain gives none
  port=P               the first ssh hop's port, when the chain gives none
  identity=FILE        ssh hops: the private key (as --identity)
  password-env=VAR     ssh hops: the login password is in $VAR
  sudo-password-env=V  sudo, su, doas hops: their password is in $V
  host-key-policy=P    ssh hops: strict, accept-new or ignore
  known-hosts=FILE     ssh hops: the known_hosts file
  connect-timeout=D    bound each hop's connection, e.g. 10s
For example:
  # hosts.txt
  [web]
  web1  deploy@web1.example.com
  web2  web2.example.com:2222  user=deploy identity=~/.ssh/deploy
  [db]
  db1   admin@db1.example.com,sudo://postgres  sudo-password-env=DB_PW
  web1                                  # web1 is in db too
  [dev]
  box   local

Many targets: at most --forks run at once (default 20); a password asked
for (--ask-password, --ask-sudo-password) is asked once, for all. Each
target that does not succeed gets a line on stderr when it ends, such as
"web1 | failed, exit 3" or "web2 | unreachable: ...". On a terminal a
progress line shows what is still running, and a summary at the
end gives every target's outcome and duration and the host keys
accept-new recorded (--summary prints it elsewhere too). --timeout bounds
the whole run: what still runs then is killed and marked. --retry-file F
lists the targets that did not succeed, with this run's connection flags
(--identity, --known-hosts, ...) as their settings: -i F runs again in
those only.

--json prints one object per line: {"target","stream","data"} for each
output line, {"target","result"} for a call's result, and for each target
at its end {"target","status","exit","started","duration","error"}, status
being ok, failed, not found, timed out, unreachable or interrupted, and
started whether the command (or call) began there: false when the target
was never reached.

Exit status: with one target, the command's own (128+n when signal n
killed it; 1 when a call failed); 255 when a target could not be reached or
its connection was lost (as ssh); 124 when --timeout passed (as timeout);
127 when the command does not exist there (as a shell; for call, when
mitogo does not have the function: found before connecting); 130 on Ctrl-C (SIGINT) and 143 on SIGTERM (128 + the signal's
number, as a shell gives); 2 for usage errors. With many: 255 if any was
unreachable, else 124 if any timed out, else 127 if any lacked the
command, else the highest status; 0 only when every target succeeded.
`
