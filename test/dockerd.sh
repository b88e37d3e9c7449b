#!/usr/bin/env bash
# test/dockerd.sh: a private dockerd for the container tests, apart from
# any docker the machine runs: Debian's /usr/sbin/dockerd with its own data
# and exec roots and socket under $MITOGO_DOCKERD_DIR (default
# /var/tmp/mitogo-dockerd), no bridge and no iptables rules (the test
# containers have no network).
#
#   bash test/dockerd.sh start   start it (unless it answers already) and
#                                print MITOGO_DOCKER_HOST=unix://...
#   bash test/dockerd.sh stop    stop it
set -euo pipefail

dir=${MITOGO_DOCKERD_DIR:-/var/tmp/mitogo-dockerd}
sock=$dir/docker.sock
host=unix://$sock
docker=/usr/bin/docker # the docker first on PATH may be another build

answers() { DOCKER_HOST=$host "$docker" version >/dev/null 2>&1; }

case "${1:-}" in
start)
	if ! answers; then
		mkdir -p "$dir"
		# setsid: the daemon outlives this script, in a session of its own.
		setsid /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false \
			--data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
			-H "$host" >"$dir/dockerd.log" 2>&1 </dev/null &
		for _ in $(seq 1 300); do
			answers && break
			sleep 0.1
		done
		if ! answers; then
			echo "test/dockerd.sh: dockerd did not start; its log:" >&2
			tail -20 "$dir/dockerd.log" >&2
			exit 1
		fi
	fi
	echo "MITOGO_DOCKER_HOST=$host"
	;;
stop)
	if [ -f "$dir/dockerd.pid" ]; then
		pid=$(cat "$dir/dockerd.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	;;
*)
	echo "usage: bash test/dockerd.sh start|stop" >&2
	exit 2
	;;
esac
