#!/usr/bin/env bash
# One call fanned out to many contexts, mitogo (test/peer/fanout: ConnectAll
# then Func.Fan) beside Python Mitogen (mitogen_fanout.py: threads to
# connect, then call_async and a Select), in one run and one table: first
# --local N local children each, then --ssh M contexts over a loopback
# sshd (sshd.sh) each. Report only: nothing is asserted.
#
#   bash test/peer/fanout.sh [--local N] [--ssh M] [--rounds R] [--limit L]
#
# Defaults: 200 local children, 50 SSH contexts, 5 timed fan-outs each,
# 16 connections at once. --ssh 0 skips the SSH part (which needs root,
# openssh-server and openssh-client); Mitogen is skipped, with a note,
# when /usr/bin/python3 cannot import mitogen (apt-get install -y
# python3-mitogen). Columns: connect_ms (all N, once), fanout_ms (median
# over the rounds, from the first call sent to the last result in) and
# the master's RSS with all N connected.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3
local_n=200 ssh_n=50 rounds=5 limit=16
while [ $# -gt 0 ]; do
	case "$1" in
	--local) local_n="${2:?}"; shift ;;
	--ssh) ssh_n="${2:?}"; shift ;;
	--rounds) rounds="${2:?}"; shift ;;
	--limit) limit="${2:?}"; shift ;;
	-h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "fanout.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

tmp="$(mktemp -d)"
sshd_up=0
cleanup() {
	[ "$sshd_up" = 1 ] && bash "$here/sshd.sh" stop >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
echo "building test/peer/fanout into $tmp ..." >&2
(cd "$root" && go build -o "$tmp/fanout" ./test/peer/fanout)
have_mitogen=1
"$py" -c 'import mitogen' 2>/dev/null || { have_mitogen=0; echo "mitogen: skipped ($py cannot import mitogen)" >&2; }

run() { # KIND N: one line of JSON per implementation into $tmp/KIND.*.json
	local kind="$1" n="$2" arg
	arg=(--local "$n")
	[ "$kind" = ssh ] && arg=(--ssh "$n")
	echo "mitogo: $n $kind ..." >&2
	"$tmp/fanout" "${arg[@]}" --rounds "$rounds" --limit "$limit" >"$tmp/$kind.mitogo.json"
	if [ "$have_mitogen" = 1 ]; then
		echo "mitogen: $n $kind ..." >&2
		"$py" "$here/mitogen_fanout.py" "${arg[@]}" --rounds "$rounds" --limit "$limit" >"$tmp/$kind.mitogen.json"
	fi
}

run local "$local_n"
if [ "$ssh_n" -gt 0 ]; then
	eval "$(bash "$here/sshd.sh" start)"
	sshd_up=1
	run ssh "$ssh_n"
fi

"$py" - "$tmp" <<'PY'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.json'))):
    with open(path) as fp:
        rows.append(json.load(fp))
print('%-8s %-5s %5s %12s %12s %14s  %s' % ('impl', 'kind', 'n', 'connect_ms', 'fanout_ms', 'rss_master_kb', 'fanout samples'))
for r in rows:
    print('%-8s %-5s %5d %12.1f %12.1f %14d  %s' % (r['impl'], r['kind'], r['n'], r['connect_ms'], r['fanout_ms'], r['rss_master_kb'], r['fanout_samples']))
    if r.get('connect_retries'):
        print('         (%d connects retried after sshd dropped them)' % r['connect_retries'])
PY
