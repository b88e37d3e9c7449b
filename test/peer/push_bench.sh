#!/usr/bin/env bash
# The 1 GiB copy benchmark: over one loopback sshd (sshd.sh), the same
# file copied to a fresh path with `scp`, `rsync`, `mitogo push` and
# Mitogen's FileService (mitogen_push.py), round by round: each round runs
# every tool once, in an order rotated by one each round, so load that
# comes and goes on the machine falls on all of them alike. Prints each
# tool's median time and throughput, its ratio to scp's throughput, and the
# peak RSS of each hop, measured the same way for every tool:
#   master: /usr/bin/time's %M (getrusage maxrss of the command and what
#           it waited for: scp/rsync/ssh, mitogo, python3), highest of the
#           rounds;
#   far:    rss_peak.py, the highest VmHWM of a process below the sshd
#           other than sshd's own (rsync --server, mitogo's far child,
#           Mitogen's python3), highest of the rounds; it samples every
#           0.1 s during every tool's copy;
#   sshd:   the same for sshd's session processes, apart: they serve
#           scp's sftp themselves (internal-sftp), and encrypt for all.
# And the CPU time (user + system) of all three, medians of the rounds:
# under load the machine's CPU, not the wire, is what a copy waits for,
# and CPU time varies far less from round to round than wall time.
# Needs root, openssh-server/client, rsync and python3-mitogen.
#
#   bash test/peer/push_bench.sh [--size MiB] [--rounds N] [--tools LIST]
#                                [--rev NAME=GITREV]... [--first-contact]
#
# --tools: comma-separated, of scp,rsync,mitogo,mitogen (default: all).
# --rev NAME=GITREV adds the tool NAME: `mitogo push` built from GITREV of
# this repository (git archive into a temporary directory), for an A/B
# comparison within one run; e.g. --rev base=HEAD~1. mitogo is built from
# the work tree as it is. --first-contact empties the far side's binary
# cache before every mitogo copy, so that each includes an upload of the
# binary (its peak RSS then covers the master's upload too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
size=1024
rounds=3
tools=scp,rsync,mitogo,mitogen
revs=()
fresh=
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--tools) tools=$2; shift 2 ;;
	--rev) revs+=("$2"); shift 2 ;;
	--first-contact) fresh=1; shift ;;
	*) echo "push_bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
IFS=, read -r -a names <<<"$tools"
work=$(mktemp -d)
trap 'bash test/peer/sshd.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
declare -A bin
for n in "${names[@]}"; do
	case "$n" in
	mitogo) go build -o "$work/mitogo" ./cmd/mitogo; bin[mitogo]=$work/mitogo ;;
	scp | rsync | mitogen) ;;
	*) echo "push_bench.sh: unknown tool $n" >&2; exit 2 ;;
	esac
done
for r in "${revs[@]}"; do
	n=${r%%=*} rev=${r#*=}
	mkdir -p "$work/rev-$n"
	git archive "$rev" | tar -x -C "$work/rev-$n"
	(cd "$work/rev-$n" && go build -o "$work/mitogo-$n" ./cmd/mitogo)
	bin[$n]=$work/mitogo-$n
	names+=("$n")
done
head -c "$((size << 20))" /dev/urandom >"$work/src"
eval "$(bash test/peer/sshd.sh start)"
key_opts=(-i "$PEER_SSH_KEY" -o UserKnownHostsFile="$PEER_SSH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes)
ssh_opts=(-p "$PEER_SSH_PORT" "${key_opts[@]}")
target="$PEER_SSH_USER@$PEER_SSH_HOST"
chain="ssh://$target:$PEER_SSH_PORT"
mitogo_flags=(--identity "$PEER_SSH_KEY" --known-hosts "$PEER_SSH_KNOWN_HOSTS")
for n in "${!bin[@]}"; do
	"${bin[$n]}" run -t "$chain" "${mitogo_flags[@]}" -- true # the binary cached there
done

copy() { # NAME: copy src to dst with tool NAME
	case "$1" in
	scp) scp -q -P "$PEER_SSH_PORT" "${key_opts[@]}" "$work/src" "$target:$work/dst" ;;
	rsync) rsync -a --whole-file -e "ssh ${ssh_opts[*]}" "$work/src" "$target:$work/dst" ;;
	mitogen) /usr/bin/python3 test/peer/mitogen_push.py "$work/src" "$work/dst" ;;
	*) "${bin[$1]}" push -t "$chain" "${mitogo_flags[@]}" "$work/src" "$work/dst" ;;
	esac
}
now() { date +%s.%N; }
declare -A times master far farname sshd cpu
run() { # NAME
	local name=$1 t0 t1 sampler m f fn sess mu ms fc sc c
	rm -f "$work/dst"
	if [ -n "$fresh" ] && [ -n "${bin[$name]:-}" ]; then
		rm -rf "${PEER_SSH_CACHE:?}"/*
	fi
	sync
	/usr/bin/python3 test/peer/rss_peak.py "$PEER_SSHD_PID" "$work/far" &
	sampler=$!
	t0=$(now)
	if ! /usr/bin/time -f "%M %U %S" -o "$work/master" bash -c "$(declare -p key_opts ssh_opts bin work target chain mitogo_flags PEER_SSH_PORT); $(declare -f copy); copy $name" >/dev/null; then
		echo "$name: the copy failed" >&2
		kill "$sampler"
		exit 1
	fi
	t1=$(now)
	kill -TERM "$sampler"
	wait "$sampler" || true
	cmp -s "$work/src" "$work/dst" || { echo "$name: copy differs" >&2; exit 1; }
	times[$name]+="$(echo "$t1 - $t0" | bc) "
	read -r m mu ms < <(tail -n 1 "$work/master")
	read -r f fn sess fc sc <"$work/far"
	c=$(echo "$mu + $ms + $fc + $sc" | bc)
	cpu[$name]+="$c "
	[ "$m" -gt "${master[$name]:-0}" ] && master[$name]=$m
	if [ "$f" -ge "${far[$name]:-0}" ]; then far[$name]=$f farname[$name]=$fn; fi
	[ "$sess" -gt "${sshd[$name]:-0}" ] && sshd[$name]=$sess
	echo "round $i: $name $(echo "$t1 - $t0" | bc) s, master $m KiB, far $f KiB ($fn), sshd $sess KiB; CPU s: master $(echo "$mu + $ms" | bc), far $fc, sshd $sc" >&2
}
k=${#names[@]}
for i in $(seq "$rounds"); do
	for j in $(seq 0 $((k - 1))); do
		run "${names[$(((i - 1 + j) % k))]}"
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
scp_t=
[[ " ${names[*]} " == *" scp "* ]] && scp_t=$(echo "${times[scp]}" | median)
echo "$size MiB, $rounds rounds, medians; peak RSS: the highest of the rounds"
printf '%-10s %8s %8s %7s %7s %11s %11s %11s  %s\n' tool seconds MiB/s vs_scp cpu_s master_KiB far_KiB sshd_KiB far_process
for name in "${names[@]}"; do
	t=$(echo "${times[$name]}" | median)
	ratio=-
	[ -n "$scp_t" ] && ratio=$(printf '%.2f' "$(echo "$scp_t / $t" | bc -l)")
	printf '%-10s %8.2f %8.1f %7s %7.2f %11s %11s %11s  %s\n' "$name" "$t" "$(echo "$size / $t" | bc -l)" "$ratio" "$(echo "${cpu[$name]}" | median)" "${master[$name]}" "${far[$name]}" "${sshd[$name]}" "${farname[$name]}"
done
