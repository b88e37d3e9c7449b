#!/usr/bin/python3
"""One call fanned out to many contexts with Python Mitogen, beside
test/peer/fanout (mitogo); fanout.sh runs both and prints one table.

    /usr/bin/python3 test/peer/mitogen_fanout.py [--local N] [--rounds R] [-v]
    eval "$(bash test/peer/sshd.sh start)"
    /usr/bin/python3 test/peer/mitogen_fanout.py --ssh N [--rounds R] [-v]

It connects the N contexts once, from --limit threads at once (connect_ms),
retrying a connect that sshd dropped, then times R fan-outs of one small call to all of them: call_async on each,
then the replies taken from a mitogen.select.Select as they come (fanout_ms:
from the first call sent to the last reply in). Prints ONE JSON object on
stdout. Run it with /usr/bin/python3 (Debian's python3-mitogen); the body
sits under the __main__ guard, as children import this file (see
mitogen_bench.py).
"""

import argparse
import json
import logging
import os
import queue
import statistics
import sys
import threading
import time

import mitogen
import mitogen.master
import mitogen.select

LOG = logging.getLogger('mitogen_fanout')


def identity(x):
    return x


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as fp:
        for line in fp:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return None


def cpu_of(pid):
    """(ns on a CPU, times put on a CPU) summed over pid's threads, from
    /proc/PID/task/*/schedstat."""
    ns = runs = 0
    task = '/proc/%d/task' % pid
    try:
        tids = os.listdir(task)
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open('%s/%s/schedstat' % (task, tid)) as fp:
                f = fp.read().split()
        except OSError:
            continue
        ns += int(f[0])
        runs += int(f[2])
    return ns, runs


def descendants(pid):
    """The living descendants of pid (each thread lists the children it
    started)."""
    import glob
    out = []
    for name in glob.glob('/proc/%d/task/*/children' % pid):
        try:
            with open(name) as fp:
                pids = fp.read().split()
        except OSError:
            continue
        for c in pids:
            out.append(int(c))
            out.extend(descendants(int(c)))
    return out


def cpu_with_children(pid, roots=()):
    """cpu_of for pid and the sum over the descendants of pid and of each
    of roots (the sshd serving the remote contexts)."""
    kids = [0, 0]
    for root in (pid,) + tuple(roots):
        for c in descendants(root):
            ns, runs = cpu_of(c)
            kids[0] += ns
            kids[1] += runs
    return cpu_of(pid), tuple(kids)


def ssh_kwargs():
    env = os.environ
    return dict(
        hostname=env.get('PEER_SSH_HOST', '127.0.0.1'),
        port=int(env['PEER_SSH_PORT']),
        username=env.get('PEER_SSH_USER', 'root'),
        identity_file=env['PEER_SSH_KEY'],
        check_host_keys='enforce',
        python_path='/usr/bin/python3',
        ssh_args=['-F', '/dev/null',
                  '-o', 'UserKnownHostsFile=' + env['PEER_SSH_KNOWN_HOSTS'],
                  '-o', 'GlobalKnownHostsFile=/dev/null'],
    )


# A stock sshd drops unauthenticated connections beyond MaxStartups
# (10:30:100), as mitogo's SSH method retries them itself: a failed
# connect is tried again, up to RETRIES times, and counted.
RETRIES = 3


def connect_all(router, n, ssh, limit):
    """n contexts, at most limit connecting at once, and how many
    connects were retried; exits when one fails RETRIES + 1 times."""
    todo = queue.Queue()
    for i in range(n):
        todo.put(i)
    ctxs = [None] * n
    errors = []
    retried = []

    def worker():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            for attempt in range(RETRIES + 1):
                try:
                    if ssh:
                        ctxs[i] = router.ssh(**ssh_kwargs())
                    else:
                        ctxs[i] = router.local()
                    break
                except Exception as e:  # noqa
                    if attempt == RETRIES:
                        errors.append(e)
                    else:
                        retried.append(i)

    threads = [threading.Thread(target=worker) for _ in range(limit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit('mitogen_fanout.py: %d of %d did not connect: %s' % (len(errors), n, errors[0]))
    return ctxs, len(retried)


def fan_once(ctxs):
    sel = mitogen.select.Select(oneshot=True)
    for c in ctxs:
        sel.add(c.call_async(identity, 7))
    got = 0
    for msg in sel:
        assert msg.unpickle() == 7
        got += 1
    assert got == len(ctxs), got


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--local', type=int, default=200)
    ap.add_argument('--ssh', type=int, default=0)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--limit', type=int, default=16)
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING)

    n, kind = (args.ssh, 'ssh') if args.ssh else (args.local, 'local')
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker)
    try:
        t0 = time.perf_counter()
        ctxs, retries = connect_all(router, n, args.ssh > 0, args.limit)
        connect_ms = (time.perf_counter() - t0) * 1e3
        fan_once(ctxs)  # untimed: the children import this module on the first call
        samples = []
        roots = (int(os.environ['PEER_SSHD_PID']),) if args.ssh and os.environ.get('PEER_SSHD_PID') else ()
        cpu0 = cpu_with_children(os.getpid(), roots)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            fan_once(ctxs)
            samples.append(round((time.perf_counter() - t0) * 1e3, 1))
        cpu1 = cpu_with_children(os.getpid(), roots)
        per = float(args.rounds)
        LOG.info('fanout samples (ms): %s', samples)
        LOG.info('per fan-out: master %.1f ms CPU, %.0f runs on a CPU; children (and under sshd) %.1f ms CPU, %.0f runs on a CPU',
                 (cpu1[0][0] - cpu0[0][0]) / 1e6 / per, (cpu1[0][1] - cpu0[0][1]) / per,
                 (cpu1[1][0] - cpu0[1][0]) / 1e6 / per, (cpu1[1][1] - cpu0[1][1]) / per)
        res = {
            'impl': 'mitogen',
            'mitogen_version': '.'.join(map(str, mitogen.__version__)),
            'python': sys.version.split()[0],
            'kind': kind, 'n': n,
            'connect_ms': round(connect_ms, 1),
            'connect_retries': retries,
            'fanout_ms': round(statistics.median(samples), 1),
            'fanout_n': len(samples),
            'fanout_samples': samples,
            'rss_master_kb': rss_kb(os.getpid()),
        }
    finally:
        broker.shutdown()
        broker.join()
    sys.stdout.write(json.dumps(res, sort_keys=True) + '\n')
