#!/usr/bin/env bash
# The SSH peer benchmarks in one go: over a loopback sshd (sshd.sh), the real
# OpenSSH client (`ssh host true`), mitogo and Python Mitogen on the same
# work, and ONE table of their medians.
#
#   bash test/peer/compare_ssh.sh [--quick] [--only NAME[,NAME]] [--bashrc]
#                                 [--wan] [--wan-delay DUR] [--wan-rate MBIT] [--rounds N]
#                                 [--ab REV]
#
# Needs root (sshd switches users), openssh-server and openssh-client, the
# user mitogo-test with root's NOPASSWD sudo to it (bash test/run.sh makes
# both) and, for Mitogen, /usr/bin/python3 with python3-mitogen (skipped with
# a note when missing). The mitogo program is built into a temp dir first.
# Results are saved as JSON under test/peer/results/ (gitignored). --bashrc
# keeps the stock handling of root's ~/.bashrc (see sshd.sh). NAMEs:
# ssh_connect, ssh_first, ssh_rebuild, ssh_call, ssh_sudo_call, ssh_parallel20.
#
# --wan puts the WAN relay (test/peer/wanrelay) in front of sshd: every
# client connects through it, each direction delayed by --wan-delay
# (default 20ms, so a 40 ms round trip) and capped at --wan-rate Mbit/s
# (default 20). It runs ssh_connect, ssh_first and ssh_rebuild only (unless
# --only says otherwise), --rounds times each (default 5), and the table
# adds the bytes each connection sent and received through the relay.
# ssh_rebuild is first contact after a rebuild: an earlier build of the
# same source (one string changed with -ldflags -X) is left in the remote
# cache first, so the working tree's build may send a delta.
#
# --ab REV builds test/peer/mitogo also from git revision REV (of this
# repository) and, instead of the table, runs first contact (ssh_first, or
# ssh_connect when --only gives it: a cached connect; ssh_rebuild: first
# contact after a rebuild, each side's earlier build being its own source
# with the one string changed) of
# REV's build (A) and of the working tree's (B) in turns, --rounds times
# each (default 5), and prints both medians and bytes: a before/after under
# the same conditions.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3

quick=()
only=""
sshd_args=()
wan=0
wan_delay=20ms
wan_rate=20
rounds=""
ab=""
while [ $# -gt 0 ]; do
	case "$1" in
	--wan) wan=1 ;;
	--wan-delay) wan_delay="${2:?--wan-delay needs a value}"; shift ;;
	--wan-rate) wan_rate="${2:?--wan-rate needs a value}"; shift ;;
	--ab) ab="${2:?--ab needs a git revision}"; shift ;;
	--rounds) rounds="${2:?--rounds needs a value}"; shift ;;
	--quick) quick=(--quick) ;;
	--only) only="${2:?--only needs a value}"; shift ;;
	--only=*) only="${1#--only=}" ;;
	--bashrc) sshd_args=(--bashrc) ;;
	-h | --help) sed -n '2,35p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "compare_ssh.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

tmp="$(mktemp -d)"
sshd_up=0
relay_pid=""
cleanup() {
	if [ -n "$relay_pid" ]; then kill -TERM "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
	if [ "$sshd_up" = 1 ]; then bash "$here/sshd.sh" stop || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building mitogo into $tmp ..." >&2
(cd "$root" && go build -o "$tmp/mitogo" ./test/peer/mitogo)
# The same source with one string changed: the earlier build ssh_rebuild
# leaves in the remote cache before the working tree's build connects.
(cd "$root" && go build -ldflags "-X main.buildNote=an-earlier-build" -o "$tmp/mitogo-earlier" ./test/peer/mitogo)
export PEER_REBUILD_FROM="$tmp/mitogo-earlier"
if [ -n "$ab" ]; then
	ab_bench="${only:-ssh_first}"
	case "$ab_bench" in
	ssh_connect | ssh_first | ssh_rebuild) ;;
	*) echo "compare_ssh.sh: --ab runs ssh_first, ssh_connect or ssh_rebuild (--only), not $ab_bench" >&2; exit 2 ;;
	esac
	echo "building mitogo at $ab into $tmp/a ..." >&2
	mkdir "$tmp/a"
	(cd "$root" && git archive "$ab" | tar -x -C "$tmp/a")
	(cd "$tmp/a" && go build -o "$tmp/mitogo-a" ./test/peer/mitogo)
	(cd "$tmp/a" && go build -ldflags "-X main.buildNote=an-earlier-build" -o "$tmp/mitogo-a-earlier" ./test/peer/mitogo)
	[ -n "$rounds" ] || rounds=5
fi
if [ "$wan" = 1 ]; then
	(cd "$root" && go build -o "$tmp/wanrelay" ./test/peer/wanrelay)
	[ -n "$only" ] || only=ssh_connect,ssh_first,ssh_rebuild
	[ -n "$rounds" ] || rounds=5
fi

# The master's cache (the images it sent, their compressed forms and the
# deltas between them) is the benchmark's own too: tests that empty this
# account's ~/.cache/mitogo cannot take them away mid-run.
export XDG_CACHE_HOME="$tmp/master-cache"

echo "starting sshd ..." >&2
bash "$here/sshd.sh" start "${sshd_args[@]}" >"$tmp/sshd.env"
# shellcheck disable=SC1091
. "$tmp/sshd.env"
sshd_up=1
echo "sshd on $PEER_SSH_HOST:$PEER_SSH_PORT (pid $PEER_SSHD_PID, dir $PEER_SSHD_DIR)" >&2

link="sshd on 127.0.0.1"
if [ "$wan" = 1 ]; then
	# The relay is this script's child: it stops when the script ends, at
	# the latest after its -max.
	"$tmp/wanrelay" -to "127.0.0.1:$PEER_SSH_PORT" -delay "$wan_delay" -rate "$wan_rate" \
		-stats "$tmp/wan-stats.json" -max 2h >"$tmp/wan.addr" 2>"$tmp/wan.log" &
	relay_pid=$!
	for _ in $(seq 1 100); do
		[ -s "$tmp/wan.addr" ] && break
		kill -0 "$relay_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$tmp/wan.addr" ] || { cat "$tmp/wan.log" >&2; echo "compare_ssh.sh: the WAN relay did not start" >&2; exit 1; }
	relay_port="$(sed 's/.*://' "$tmp/wan.addr")"
	# sshd's key under the relay's port, for every client's known_hosts.
	sed "s/^\[127.0.0.1\]:$PEER_SSH_PORT /[127.0.0.1]:$relay_port /" "$PEER_SSH_KNOWN_HOSTS" >"$tmp/known_hosts_wan"
	export PEER_SSH_PORT="$relay_port" PEER_SSH_KNOWN_HOSTS="$tmp/known_hosts_wan" PEER_WAN_STATS="$tmp/wan-stats.json"
	link="sshd behind the WAN relay ($wan_delay each way, $wan_rate Mbit/s each way) on 127.0.0.1:$relay_port"
	echo "$link" >&2
fi

stamp="$(date +%Y%m%d-%H%M%S)"
out="$here/results"
mkdir -p "$out"
openssh_json="$out/$stamp-ssh-openssh.json"
mitogo_json="$out/$stamp-ssh-mitogo.json"
mitogen_json="$out/$stamp-ssh-mitogen.json"

load="$(cut -d' ' -f1-3 /proc/loadavg)" # before measuring (the build is over)
only_args=()
[ -z "$only" ] || only_args=(--only "$only")
# Mitogen has no rebuild to measure (it sends its modules every time): with
# nothing else chosen, it does not run.
mitogen_only_args=("${only_args[@]}")
mitogen_run=1
if [ -n "$only" ]; then
	mitogen_only="$(echo ",$only," | sed 's/,ssh_rebuild[a-z_]*,/,/g; s/^,//; s/,$//')"
	mitogen_only_args=(--only "$mitogen_only")
	[ -n "$mitogen_only" ] || mitogen_run=0
fi
rounds_args=()
runs_args=()
[ -z "$rounds" ] || { rounds_args=(--rounds "$rounds"); runs_args=(--runs "$rounds"); }

# ssh host true is the reference of the connect rows only.
if [ -z "$only" ] || echo "$only" | grep -qE 'ssh_connect|ssh_first|ssh_rebuild|ssh_true'; then
	echo "running openssh ..." >&2
	"$py" "$here/openssh_bench.py" "${quick[@]}" "${runs_args[@]}" >"$openssh_json"
else
	openssh_json=""
fi

if [ -n "$ab" ]; then
	ab_json="$out/$stamp-ssh-ab.jsonl"
	for i in $(seq 1 "$rounds"); do
		echo "round $i of $rounds: A ($ab), then B (working tree) ..." >&2
		for side in a b; do
			bin="$tmp/mitogo" earlier="$tmp/mitogo-earlier"
			[ "$side" = b ] || bin="$tmp/mitogo-a" earlier="$tmp/mitogo-a-earlier"
			printf '{"side":"%s","res":%s}\n' "$side" "$(PEER_REBUILD_FROM="$earlier" "$bin" --ssh --only "$ab_bench" --rounds 1)" >>"$ab_json"
		done
	done
	echo "results: $ab_json" >&2
	echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(go version); $link; load before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	"$py" - "$ab_json" "$ab" "$ab_bench" <<-'PY'
		import json, statistics, sys
		rows = [json.loads(l) for l in open(sys.argv[1])]
		bench = sys.argv[3]
		key = {'ssh_connect': 'ssh_connect_cached', 'ssh_first': 'ssh_connect_first', 'ssh_rebuild': 'ssh_connect_rebuild'}[bench]
		what = {'ssh_connect': 'cached connect', 'ssh_first': 'first contact', 'ssh_rebuild': 'first contact after a rebuild'}[bench]
		print('%s (%s), A = %s, B = working tree, in turns:' % (what, bench, sys.argv[2]))
		for side, name in (('a', 'A'), ('b', 'B')):
		    rs = [r['res'] for r in rows if r['side'] == side]
		    ms = [r[key + '_ms'] for r in rs]
		    up = [r.get(key + '_wire_up_bytes') for r in rs]
		    sent = rs[0].get(bench + '_bytes')
		    print('  %s: median %.1f ms of %s; upload %s B; through the relay %s B up per connection'
		          % (name, statistics.median(ms), ms, sent, up[0]))
		    phases = [p for r in rs for p in r.get(key + '_phases') or []]
		    if phases:
		        names = [n for n in phases[0] if all(n in p for p in phases)]
		        print('     phases (median ms): ' + ', '.join('%s %.1f' % (n, statistics.median(p[n] for p in phases)) for n in names))
	PY
	exit 0
fi

echo "running mitogo ..." >&2
"$tmp/mitogo" --ssh "${quick[@]}" "${only_args[@]}" "${rounds_args[@]}" >"$mitogo_json"

if [ "$mitogen_run" = 0 ]; then
	mitogen_json=""
elif [ -x "$py" ] && "$py" -c 'import mitogen.master' 2>/dev/null; then
	echo "running mitogen ..." >&2
	(cd "$root" && "$py" test/peer/mitogen_bench.py --ssh "${quick[@]}" "${mitogen_only_args[@]}" "${rounds_args[@]}") >"$mitogen_json"
else
	echo "mitogen: SKIPPED: $py cannot import mitogen (apt-get install -y python3-mitogen)" >&2
	mitogen_json=""
fi

echo "results: $out/$stamp-ssh-*.json" >&2
bashrc="root's ~/.bashrc skipped (SHLVL=1)"
[ ${#sshd_args[@]} -eq 0 ] || bashrc="root's ~/.bashrc sourced (--bashrc)"
header="$(date -u '+%Y-%m-%d %H:%M:%S UTC'); kernel $(uname -r); nproc $(nproc); $(go version); $link, MaxStartups default; $bashrc; load before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" "$here/table_ssh.py" "$openssh_json" "$mitogo_json" "$mitogen_json" "$header"
