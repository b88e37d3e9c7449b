#!/usr/bin/env bash
# The 1 GiB copy benchmark: over one loopback sshd (sshd.sh), the same
# file copied to a fresh path with `mitogo push`, `scp` and `rsync`, in
# turns, --rounds times each; prints each one's median throughput, its
# ratio to scp's, and the peak RSS (VmHWM) of mitogo's master and of the
# far mitogo process. Needs root, openssh-server/client and rsync.
#
#   bash test/peer/push_bench.sh [--size MiB] [--rounds N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
size=1024
rounds=3
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) echo "push_bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
work=$(mktemp -d)
trap 'bash test/peer/sshd.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
go build -o "$work/mitogo" ./cmd/mitogo
head -c "$((size << 20))" /dev/urandom >"$work/src"
eval "$(bash test/peer/sshd.sh start)"
key_opts=(-i "$PEER_SSH_KEY" -o UserKnownHostsFile="$PEER_SSH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes)
ssh_opts=(-p "$PEER_SSH_PORT" "${key_opts[@]}")
target="$PEER_SSH_USER@$PEER_SSH_HOST"
chain="ssh://$target:$PEER_SSH_PORT"
mitogo_flags=(--identity "$PEER_SSH_KEY" --known-hosts "$PEER_SSH_KNOWN_HOSTS")
"$work/mitogo" run -t "$chain" "${mitogo_flags[@]}" -- true # the binary cached there

now() { date +%s.%N; }
declare -A times
run() { # NAME CMD...
	local name=$1
	shift
	rm -f "$work/dst"
	sync
	local t0 t1
	t0=$(now)
	"$@" >/dev/null
	t1=$(now)
	cmp -s "$work/src" "$work/dst" || { echo "$name: copy differs" >&2; exit 1; }
	times[$name]+="$(echo "$t1 - $t0" | bc) "
}
rss_file="$work/rss"
# far_rss: the highest VmHWM seen of a process run from the far side's
# binary cache, sampled every 0.2 s while the command runs.
far_rss() {
	local max=0 p exe hwm
	while [ -e "$work/sampling" ]; do
		for p in /proc/[0-9]*; do
			exe=$(readlink "$p/exe" 2>/dev/null) || continue
			case "$exe" in "$PEER_SSH_CACHE"*) ;; *) continue ;; esac
			hwm=$(awk '/^VmHWM/ {print $2}' "$p/status" 2>/dev/null) || continue
			[ -n "$hwm" ] && [ "$hwm" -gt "$max" ] && max=$hwm
		done
		sleep 0.2
	done
	echo "$max" >"$work/far_rss"
}
for i in $(seq "$rounds"); do
	run scp scp -q -P "$PEER_SSH_PORT" "${key_opts[@]}" "$work/src" "$target:$work/dst"
	run rsync rsync -a --whole-file -e "ssh ${ssh_opts[*]}" "$work/src" "$target:$work/dst"
	touch "$work/sampling"
	far_rss &
	sampler=$!
	run mitogo /usr/bin/time -f "%M" -o "$rss_file" "$work/mitogo" push -t "$chain" "${mitogo_flags[@]}" "$work/src" "$work/dst"
	rm -f "$work/sampling"
	wait "$sampler"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
scp_t=$(echo "${times[scp]}" | median)
printf '%-8s %10s %10s %8s\n' tool seconds MiB/s vs_scp
for name in scp rsync mitogo; do
	t=$(echo "${times[$name]}" | median)
	printf '%-8s %10.2f %10.1f %8.2f\n' "$name" "$t" "$(echo "$size / $t" | bc -l)" "$(echo "$scp_t / $t" | bc -l)"
done
echo "mitogo peak RSS (last round): master $(cat "$rss_file") KiB, far side $(cat "$work/far_rss") KiB"
