#!/usr/bin/env bash
# A throwaway OpenSSH sshd on 127.0.0.1 for the SSH peer benchmarks
# (compare_ssh.sh). It is test/sshtest's approach without a testing.TB:
# its own ed25519 host key, client key and known_hosts in a temp dir, root
# login by key only, and otherwise sshd's stock settings (MaxStartups stays
# at the default 10:30:100, LogLevel at INFO).
#
#   eval "$(bash test/peer/sshd.sh start [--bashrc])"   # prints export lines
#   ... ssh -p "$PEER_SSH_PORT" -i "$PEER_SSH_KEY" ... root@127.0.0.1 ...
#   bash test/peer/sshd.sh stop               # uses PEER_SSHD_PID, PEER_SSHD_DIR
#
#   bash test/peer/sshd.sh run CMD [ARG...]   # start, run CMD with the
#                                             # variables exported, stop
#
# start prints: PEER_SSH_HOST PEER_SSH_PORT PEER_SSH_USER PEER_SSH_KEY
# PEER_SSH_KNOWN_HOSTS PEER_SSH_CACHE PEER_SSHD_PID PEER_SSHD_DIR (sshd's log is
# $PEER_SSHD_DIR/sshd.log). Needs root (sshd switches users), /usr/sbin/sshd
# and ssh-keygen (packages openssh-server, openssh-client).
#
# Two departures from stock. Sessions get XDG_CACHE_HOME in the temp dir
# (SetEnv), so mitogo's remote binary cache is the benchmark's own,
# $PEER_SSH_CACHE, rather than root's ~/.cache/mitogo: deleting it for the
# first-contact runs cannot disturb other tests on the machine, nor theirs
# refill it mid-run. (sudo resets the environment: a sudo hop uses the
# target user's ~/.cache.) And they get SHLVL=1, which
# keeps bash from sourcing the login user's ~/.bashrc for `ssh host CMD`
# (bash does that when it sees SSH_CLIENT and is a top-level shell). On this
# machine root's .bashrc runs `pyenv init -`: ~190 ms per session, and its
# `pyenv rehash` lock serialises concurrent sessions (20 at once took
# seconds; one ssh took 20 s), so every figure would mostly time pyenv.
# OpenSSH, mitogo and Mitogen all get the same sshd either way; --bashrc
# (or PEER_SSHD_BASHRC=1) keeps the stock behaviour.
#
# Pitfalls handled as in test/sshtest/sshtest.go: sshd wants /run/sshd and
# an absolute path (it re-executes itself per connection); the temp dir is
# under the world-writable /tmp, so StrictModes no; UsePAM no, because PAM
# stacks in containers often fail.
set -euo pipefail

sshd=/usr/sbin/sshd
host=127.0.0.1

die() { echo "sshd.sh: $*" >&2; exit 1; }

free_port() {
	# The kernel's choice of a free port; it may be taken before sshd binds
	# it, so start retries.
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# greets PORT: true once something on 127.0.0.1:PORT sends an SSH banner.
greets() {
	timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 4 <&3' _ "$1" 2>/dev/null | grep -q '^SSH-'
}

start() {
	local bashrc="${PEER_SSHD_BASHRC:-0}"
	case "${1:-}" in
	--bashrc) bashrc=1 ;;
	"") ;;
	*) die "start: unknown argument $1" ;;
	esac
	local shlvl="SHLVL=1"
	[ "$bashrc" = 1 ] && shlvl=""
	[ "$(id -u)" = 0 ] || die "must run as root (sshd switches to the logged-in user)"
	[ -x "$sshd" ] || die "no $sshd (apt-get install -y openssh-server)"
	command -v ssh-keygen >/dev/null || die "no ssh-keygen (apt-get install -y openssh-client)"
	local dir
	dir="$(mktemp -d /tmp/peer-sshd.XXXXXX)"
	local setenv="SetEnv XDG_CACHE_HOME=$dir/xdg-cache${shlvl:+ $shlvl}"
	ssh-keygen -q -t ed25519 -N '' -C peer-sshd-host -f "$dir/host_ed25519"
	ssh-keygen -q -t ed25519 -N '' -C peer-sshd-client -f "$dir/client_ed25519"
	install -m 600 "$dir/client_ed25519.pub" "$dir/authorized_keys_root"
	mkdir -p /run/sshd
	chmod 755 /run/sshd

	local port pid="" attempt
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		cat >"$dir/sshd_config" <<-EOF
			# Written by mitogo's test/peer/sshd.sh for the SSH peer benchmarks.
			ListenAddress $host
			Port $port
			HostKey $dir/host_ed25519
			PidFile $dir/sshd.pid
			AuthorizedKeysFile $dir/authorized_keys_%u
			StrictModes no
			AllowUsers root
			PermitRootLogin prohibit-password
			PubkeyAuthentication yes
			PasswordAuthentication no
			KbdInteractiveAuthentication no
			UsePAM no
			UseDNS no
			PrintMotd no
			PrintLastLog no
			Subsystem sftp internal-sftp
			$setenv
		EOF
		chmod 600 "$dir/sshd_config"
		"$sshd" -t -f "$dir/sshd_config" || die "sshd rejects $dir/sshd_config"
		# Detached (own session, no terminal, output to a file) so that
		# `eval "$(sshd.sh start)"` returns while sshd runs on.
		setsid "$sshd" -D -e -f "$dir/sshd_config" </dev/null >"$dir/sshd.log" 2>&1 &
		pid=$!
		local i
		for i in $(seq 1 150); do
			greets "$port" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null && greets "$port"; then
			break
		fi
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		if ! grep -q 'Address already in use' "$dir/sshd.log"; then
			cat "$dir/sshd.log" >&2
			rm -rf "$dir"
			die "sshd did not start"
		fi
		pid=""
	done
	[ -n "$pid" ] || { rm -rf "$dir"; die "no free port after 5 attempts"; }

	printf '[%s]:%s %s\n' "$host" "$port" "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" >"$dir/known_hosts"
	chmod 600 "$dir/known_hosts"
	printf 'export PEER_SSH_HOST=%q\n' "$host"
	printf 'export PEER_SSH_PORT=%q\n' "$port"
	printf 'export PEER_SSH_USER=root\n'
	printf 'export PEER_SSH_KEY=%q\n' "$dir/client_ed25519"
	printf 'export PEER_SSH_KNOWN_HOSTS=%q\n' "$dir/known_hosts"
	printf 'export PEER_SSH_CACHE=%q\n' "$dir/xdg-cache/mitogo"
	printf 'export PEER_SSHD_PID=%q\n' "$pid"
	printf 'export PEER_SSHD_DIR=%q\n' "$dir"
}

# children PID: the direct children of PID (sshd's per-connection processes).
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

stop() {
	local pid="${PEER_SSHD_PID:?sshd.sh stop: PEER_SSHD_PID is not set}"
	local dir="${PEER_SSHD_DIR:-}"
	# Only the sshd we started: check that PID is still /usr/sbin/sshd on
	# our config before signalling it.
	if [ -n "$dir" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $dir/sshd_config"; then
		local kids
		kids="$(children "$pid")"
		kill -TERM "$pid" $kids 2>/dev/null || true
		local i
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" $(children "$pid") 2>/dev/null || true
	elif kill -0 "$pid" 2>/dev/null; then
		echo "sshd.sh: pid $pid is not our sshd ($dir); not signalling it" >&2
	fi
	if [ -n "$dir" ] && [[ "$dir" == /tmp/peer-sshd.* ]]; then
		rm -rf "$dir"
	fi
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
run)
	shift
	[ $# -gt 0 ] || die "run needs a command"
	exports="$(start)" # PEER_SSHD_BASHRC=1 for stock ~/.bashrc handling
	eval "$exports"
	trap stop EXIT
	"$@"
	;;
*) sed -n '2,34p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
