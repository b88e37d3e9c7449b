#!/usr/bin/env bash
# Run the three peer benchmarks in one go (the bare Go floor, mitogo, and
# Python Mitogen) and print one table of their medians.
#
#   bash test/peer/compare.sh [--quick] [--only NAME[,NAME]]
#
# The two Go programs are built once into a temp dir first, so build time is
# not measured and children exec a built binary. Results are saved as JSON
# under test/peer/results/ (gitignored). Mitogen is skipped, with a note, when
# /usr/bin/python3 cannot import mitogen (apt-get install -y python3-mitogen).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3

quick=()
only=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=(--quick) ;;
	--only) only="${2:?--only needs a value}"; shift ;;
	--only=*) only="${1#--only=}" ;;
	-h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "compare.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
	shift
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "building floor and mitogo into $tmp ..." >&2
(cd "$root" && go build -o "$tmp/floor" ./test/peer/floor && go build -o "$tmp/mitogo" ./test/peer/mitogo)

stamp="$(date +%Y%m%d-%H%M%S)"
out="$here/results"
mkdir -p "$out"
floor_json="$out/$stamp-floor.json"
mitogo_json="$out/$stamp-mitogo.json"
mitogen_json="$out/$stamp-mitogen.json"

# The floor has no chain3: drop it from --only for the floor, and skip the
# floor when nothing else is left.
floor_only=""
run_floor=1
if [ -n "$only" ]; then
	floor_only="$(echo "$only" | tr ',' '\n' | grep -v -E '^ *chain3' | paste -sd, - || true)"
	[ -n "$floor_only" ] || run_floor=0
fi
only_args() { if [ -n "$1" ]; then printf '%s\n' --only "$1"; fi; }

if [ "$run_floor" = 1 ]; then
	echo "running floor ..." >&2
	mapfile -t a < <(only_args "$floor_only")
	"$tmp/floor" "${quick[@]}" "${a[@]}" >"$floor_json"
else
	echo "floor: skipped (it has no chain3)" >&2
	floor_json=""
fi

echo "running mitogo ..." >&2
mapfile -t a < <(only_args "$only")
"$tmp/mitogo" "${quick[@]}" "${a[@]}" >"$mitogo_json"

if [ -x "$py" ] && "$py" -c 'import mitogen.master' 2>/dev/null; then
	echo "running mitogen ..." >&2
	(cd "$root" && "$py" test/peer/mitogen_bench.py "${quick[@]}" "${a[@]}") >"$mitogen_json"
else
	echo "mitogen: SKIPPED: $py cannot import mitogen (apt-get install -y python3-mitogen)" >&2
	mitogen_json=""
fi

echo "results: $out/$stamp-*.json" >&2
header="$(date -u '+%Y-%m-%d %H:%M:%S UTC'); kernel $(uname -r); nproc $(nproc); $(go version)"
"$py" "$here/table.py" "$floor_json" "$mitogo_json" "$mitogen_json" "$header"
