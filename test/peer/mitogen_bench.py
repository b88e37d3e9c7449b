#!/usr/bin/python3
"""Reference figures for Python Mitogen, to set beside mitogo's.

Run with Debian's interpreter (apt-get install -y python3-mitogen):

    /usr/bin/python3 test/peer/mitogen_bench.py [--quick] [--only NAME[,NAME]]

Prints ONE JSON object on stdout; everything else goes to stderr.
Times are medians in microseconds (``*_us``) or milliseconds (``*_ms``).

Mitogen pitfalls this script respects:
  * A 64 MiB bytes argument exceeds the default 128 MiB max_message_size
    once pickled, so the Router is built with a larger limit.
  * Functions called remotely must be module-level, and the script body must
    sit under ``if __name__ == '__main__':``: the child imports this file as
    ``__main__`` and Mitogen only ships the source *above* that guard.
  * Children run ``sys.executable`` of the master, so run this with
    /usr/bin/python3 (the interpreter that has python3-mitogen), not a pyenv
    shim.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time

import mitogen
import mitogen.core
import mitogen.master

LOG = logging.getLogger('mitogen_bench')

MIB = 1024 * 1024
MAX_MESSAGE_SIZE = 512 * MIB


# --- functions executed in children (must be module-level) -----------------

def identity(x):
    return x


def nop():
    return None


def length(b):
    return len(b)


# --- helpers ----------------------------------------------------------------

def now_ns():
    return time.perf_counter_ns()


def median(xs):
    return statistics.median(xs)


def proc_status_kb(pid, field):
    """Return a 'VmRSS'/'VmHWM' style field of /proc/PID/status, in kB."""
    with open('/proc/%d/status' % pid) as fp:
        for line in fp:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def shutdown(ctx):
    ctx.shutdown(wait=True)


# --- benchmarks -------------------------------------------------------------

def bench_start_first_call(router, cfg):
    samples = []
    for i in range(cfg.runs):
        t0 = now_ns()
        ctx = router.local()
        ctx.call(nop)
        samples.append((now_ns() - t0) / 1e3)
        shutdown(ctx)
    LOG.info('start_first_call samples (us): %s', [round(s) for s in samples])
    return {
        'start_first_call_us': round(median(samples), 1),
        'start_first_call_n': len(samples),
    }


def _time_calls(ctx, n):
    # Warm-up: the first call imports this module in the child.
    ctx.call(identity, 0)
    samples = []
    t_all = now_ns()
    for i in range(n):
        arg = i if i % 2 else 'x%d' % i   # small int / small str
        t0 = now_ns()
        r = ctx.call(identity, arg)
        samples.append((now_ns() - t0) / 1e3)
        assert r == arg, (r, arg)
    total_ms = (now_ns() - t_all) / 1e6
    return samples, total_ms


def bench_call(router, cfg):
    ctx = router.local()
    try:
        samples, total_ms = _time_calls(ctx, cfg.calls)
    finally:
        shutdown(ctx)
    return {
        'call_us': round(median(samples), 1),
        'call_n': len(samples),
        'call_total_ms': round(total_ms, 1),
    }


def bench_bytes64(router, cfg):
    ctx = router.local()
    # Uniform byte distribution, like compressed or random data.  Note that
    # Mitogen pickles with protocol 2, which on Python 3 encodes bytes as a
    # latin-1 str re-encoded to UTF-8: every byte >= 0x80 costs 2 bytes on the
    # wire, so this 64 MiB payload is ~96 MiB framed (see bytes64_wire_bytes).
    payload = bytes(range(256)) * (64 * MIB // 256)
    wire = len(mitogen.core.Message.pickled((payload,)).data)
    rates = []
    try:
        # One untimed call first: it grows both heaps, so the timed runs
        # measure transfer rather than first touch of fresh pages.
        ctx.call(length, payload)
        for i in range(cfg.big_runs):
            t0 = now_ns()
            n = ctx.call(length, payload)
            secs = (now_ns() - t0) / 1e9
            assert n == len(payload), n
            rates.append(64.0 / secs)   # MiB/s, reported as MB/s
    finally:
        shutdown(ctx)
    LOG.info('bytes64 samples (MB/s): %s', [round(r, 1) for r in rates])
    return {
        'bytes64_mbps': round(median(rates), 1),
        'bytes64_n': len(rates),
        'bytes64_samples': [round(r, 1) for r in rates],
        'bytes64_wire_bytes': wire,
    }


def bench_chain3(router, cfg):
    c1 = router.local()
    c2 = router.local(via=c1)
    c3 = router.local(via=c2)
    try:
        samples, total_ms = _time_calls(c3, cfg.calls)
    finally:
        for c in (c3, c2, c1):
            shutdown(c)
    return {
        'chain3_call_us': round(median(samples), 1),
        'chain3_call_n': len(samples),
        'chain3_call_total_ms': round(total_ms, 1),
    }


def _parallel_once(router, n):
    ctxs = [None] * n
    errors = []
    go = threading.Event()

    def worker(i):
        go.wait()
        try:
            c = router.local()
            ctxs[i] = c
            c.call(nop)
        except Exception as e:  # noqa
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    t0 = now_ns()
    go.set()
    for t in threads:
        t.join()
    elapsed_ms = (now_ns() - t0) / 1e6
    for c in ctxs:
        if c is not None:
            shutdown(c)
    if errors:
        raise errors[0]
    return elapsed_ms


def bench_parallel20(router, cfg):
    samples = [_parallel_once(router, 20) for _ in range(cfg.par_runs)]
    LOG.info('parallel20 samples (ms): %s', [round(s, 1) for s in samples])
    return {
        'parallel20_ms': round(median(samples), 1),
        'parallel20_n': len(samples),
        'parallel20_samples': [round(s, 1) for s in samples],
    }


def bench_rss(router, cfg):
    ctx = router.local()
    try:
        ctx.call(nop)
        pid = ctx.call(os.getpid)
        time.sleep(0.2)   # let the child settle; it is idle from here on
        out = {
            'rss_master_kb': proc_status_kb(os.getpid(), 'VmRSS'),
            'rss_master_hwm_kb': proc_status_kb(os.getpid(), 'VmHWM'),
            'rss_child_kb': proc_status_kb(pid, 'VmRSS'),
            'rss_child_hwm_kb': proc_status_kb(pid, 'VmHWM'),
        }
    finally:
        shutdown(ctx)
    return out


# rss first: it is measured with one idle child, before the 64 MiB test
# inflates the master's heap.
BENCHES = [
    ('rss', bench_rss),
    ('start_first_call', bench_start_first_call),
    ('call', bench_call),
    ('bytes64', bench_bytes64),
    ('chain3', bench_chain3),
    ('parallel20', bench_parallel20),
]

ALIASES = {
    'start_first_call_us': 'start_first_call', 'call_us': 'call',
    'bytes64_mbps': 'bytes64', 'chain3_call_us': 'chain3',
    'chain3_call': 'chain3', 'parallel20_ms': 'parallel20',
    'rss_master_kb': 'rss', 'rss_child_kb': 'rss',
}


def main(router, cfg, only):
    result = {
        'impl': 'mitogen',
        'mitogen_version': '.'.join(map(str, mitogen.__version__)),
        'python': sys.version.split()[0],
        'quick': cfg.quick,
    }
    for name, fn in BENCHES:
        if only and name not in only:
            continue
        LOG.info('running %s', name)
        t0 = time.monotonic()
        result.update(fn(router, cfg))
        LOG.info('%s done in %.1fs', name, time.monotonic() - t0)
    return result


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true',
                    help='fewer repetitions (200 calls, 3 runs)')
    ap.add_argument('--only', default='',
                    help='comma-separated subset: ' +
                    ','.join(n for n, _ in BENCHES))
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format='%(asctime)s %(name)s %(levelname)s %(message)s')

    only = set()
    for n in filter(None, (s.strip() for s in args.only.split(','))):
        n = ALIASES.get(n, n)
        if n not in dict(BENCHES):
            ap.error('unknown benchmark %r' % n)
        only.add(n)

    cfg = argparse.Namespace(
        quick=args.quick,
        runs=3 if args.quick else 15,
        calls=200 if args.quick else 2000,
        big_runs=1 if args.quick else 3,
        par_runs=1 if args.quick else 3,
    )
    # Default max_message_size is 128 MiB, which a 64 MiB bytes argument
    # exceeds once pickled (see bench_bytes64); children inherit this value.
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker, max_message_size=MAX_MESSAGE_SIZE)
    try:
        res = main(router, cfg, only)
    finally:
        broker.shutdown()
        broker.join()
    sys.stdout.write(json.dumps(res, sort_keys=True) + '\n')
    sys.stdout.flush()
