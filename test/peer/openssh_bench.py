#!/usr/bin/python3
"""The OpenSSH reference for the SSH peer benchmarks: `ssh host true`.

    eval "$(bash test/peer/sshd.sh start)"
    /usr/bin/python3 test/peer/openssh_bench.py [--quick] [-v]

Reads PEER_SSH_HOST, PEER_SSH_PORT, PEER_SSH_USER, PEER_SSH_KEY and
PEER_SSH_KNOWN_HOSTS (from sshd.sh) and runs the real ssh client with the
arguments of test/sshtest's Server.SSHArgs (-F /dev/null, BatchMode, the
benchmark's key and known_hosts, strict host key checking). Prints ONE JSON
object on stdout:

  ssh_true_ms             median wall time of `ssh ARGS true` (10 runs, after
                          one untimed run), the client's default key exchange
  ssh_true_curve25519_ms  the same with -o KexAlgorithms=curve25519-sha256,
                          the exchange mitogo's Go client gets from this sshd
                          (OpenSSH 9.2 prefers sntrup761x25519, which costs
                          ~100 ms of CPU here)

Through the WAN relay (compare_ssh.sh --wan; PEER_WAN_STATS names its
stats file) it adds ssh_true_wire_up_bytes and ssh_true_wire_down_bytes: the
bytes one `ssh host true` sent and received.

stdlib only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def ssh_args():
    env = os.environ
    missing = [n for n in ('PEER_SSH_PORT', 'PEER_SSH_KEY', 'PEER_SSH_KNOWN_HOSTS') if not env.get(n)]
    if missing:
        sys.exit('openssh_bench.py: %s not set (run test/peer/sshd.sh start)' % ', '.join(missing))
    return [
        '-F', '/dev/null',
        '-p', env['PEER_SSH_PORT'],
        '-i', env['PEER_SSH_KEY'],
        '-o', 'UserKnownHostsFile=' + env['PEER_SSH_KNOWN_HOSTS'],
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes',
        '-o', 'IdentitiesOnly=yes',
        '%s@%s' % (env.get('PEER_SSH_USER', 'root'), env.get('PEER_SSH_HOST', '127.0.0.1')),
    ]


def read_wire():
    """The WAN relay's counts once no connection is open, or None."""
    path = os.environ.get('PEER_WAN_STATS')
    if not path:
        return None
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(path) as fp:
                w = json.load(fp)
            if w['open'] == 0:
                return w
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            sys.exit('openssh_bench.py: WAN relay stats %s: connections still open' % path)
        time.sleep(0.02)


def time_ssh(extra, runs, verbose, wire=None):
    argv = ['ssh'] + extra + ssh_args() + ['true']
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)   # untimed
    before = read_wire()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    after = read_wire()
    if wire is not None and after is not None:
        wire['ssh_true_wire_up_bytes'] = (after['up_bytes'] - before['up_bytes']) // runs
        wire['ssh_true_wire_down_bytes'] = (after['down_bytes'] - before['down_bytes']) // runs
    if verbose:
        print('%s samples (ms): %s' % (extra or 'default', [round(s, 1) for s in samples]), file=sys.stderr)
    return samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='3 runs instead of 10')
    ap.add_argument('--runs', type=int, default=0, help='timed runs (default 10, 3 with --quick)')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 10)

    version = subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()
    res = {'impl': 'openssh', 'openssh_version': version, 'quick': args.quick}
    s = time_ssh([], runs, args.verbose, res)
    res.update(ssh_true_ms=round(statistics.median(s), 1), ssh_true_n=len(s),
               ssh_true_samples=[round(x, 1) for x in s])
    s = time_ssh(['-o', 'KexAlgorithms=curve25519-sha256'], runs, args.verbose)
    res.update(ssh_true_curve25519_ms=round(statistics.median(s), 1),
               ssh_true_curve25519_samples=[round(x, 1) for x in s])
    sys.stdout.write(json.dumps(res, sort_keys=True) + '\n')


if __name__ == '__main__':
    main()
