#!/usr/bin/env bash
# The SSH peer benchmarks in one go: over a loopback sshd (sshd.sh), the real
# OpenSSH client (`ssh host true`), mitogo and Python Mitogen on the same
# work, and ONE table of their medians.
#
#   bash test/peer/compare_ssh.sh [--quick] [--only NAME[,NAME]] [--bashrc]
#
# Needs root (sshd switches users), openssh-server and openssh-client, the
# user mitogo-test with root's NOPASSWD sudo to it (bash test/run.sh makes
# both) and, for Mitogen, /usr/bin/python3 with python3-mitogen (skipped with
# a note when missing). The mitogo program is built into a temp dir first.
# Results are saved as JSON under test/peer/results/ (gitignored). --bashrc
# keeps the stock handling of root's ~/.bashrc (see sshd.sh). NAMEs:
# ssh_connect, ssh_first, ssh_call, ssh_sudo_call, ssh_parallel20.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3

quick=()
only=""
sshd_args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=(--quick) ;;
	--only) only="${2:?--only needs a value}"; shift ;;
	--only=*) only="${1#--only=}" ;;
	--bashrc) sshd_args=(--bashrc) ;;
	-h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "compare_ssh.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

tmp="$(mktemp -d)"
sshd_up=0
cleanup() {
	if [ "$sshd_up" = 1 ]; then bash "$here/sshd.sh" stop || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building mitogo into $tmp ..." >&2
(cd "$root" && go build -o "$tmp/mitogo" ./test/peer/mitogo)

echo "starting sshd ..." >&2
bash "$here/sshd.sh" start "${sshd_args[@]}" >"$tmp/sshd.env"
# shellcheck disable=SC1091
. "$tmp/sshd.env"
sshd_up=1
echo "sshd on $PEER_SSH_HOST:$PEER_SSH_PORT (pid $PEER_SSHD_PID, dir $PEER_SSHD_DIR)" >&2

stamp="$(date +%Y%m%d-%H%M%S)"
out="$here/results"
mkdir -p "$out"
openssh_json="$out/$stamp-ssh-openssh.json"
mitogo_json="$out/$stamp-ssh-mitogo.json"
mitogen_json="$out/$stamp-ssh-mitogen.json"

load="$(cut -d' ' -f1-3 /proc/loadavg)" # before measuring (the build is over)
only_args=()
[ -z "$only" ] || only_args=(--only "$only")

# ssh host true is the reference of the connect rows only.
if [ -z "$only" ] || echo "$only" | grep -qE 'ssh_connect|ssh_first|ssh_true'; then
	echo "running openssh ..." >&2
	"$py" "$here/openssh_bench.py" "${quick[@]}" >"$openssh_json"
else
	openssh_json=""
fi

echo "running mitogo ..." >&2
"$tmp/mitogo" --ssh "${quick[@]}" "${only_args[@]}" >"$mitogo_json"

if [ -x "$py" ] && "$py" -c 'import mitogen.master' 2>/dev/null; then
	echo "running mitogen ..." >&2
	(cd "$root" && "$py" test/peer/mitogen_bench.py --ssh "${quick[@]}" "${only_args[@]}") >"$mitogen_json"
else
	echo "mitogen: SKIPPED: $py cannot import mitogen (apt-get install -y python3-mitogen)" >&2
	mitogen_json=""
fi

echo "results: $out/$stamp-ssh-*.json" >&2
bashrc="root's ~/.bashrc skipped (SHLVL=1)"
[ ${#sshd_args[@]} -eq 0 ] || bashrc="root's ~/.bashrc sourced (--bashrc)"
header="$(date -u '+%Y-%m-%d %H:%M:%S UTC'); kernel $(uname -r); nproc $(nproc); $(go version); sshd on 127.0.0.1, MaxStartups default; $bashrc; load before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" "$here/table_ssh.py" "$openssh_json" "$mitogo_json" "$mitogen_json" "$header"
