#!/usr/bin/python3
"""Reference figures for Python Mitogen, to set beside mitogo's.

Run with Debian's interpreter (apt-get install -y python3-mitogen):

    /usr/bin/python3 test/peer/mitogen_bench.py [--quick] [--only NAME[,NAME]]

With --ssh it measures Mitogen over a real sshd instead (the SSH peer
benchmarks; see compare_ssh.sh), reading PEER_SSH_PORT, PEER_SSH_KEY and
PEER_SSH_KNOWN_HOSTS (and PEER_SSH_HOST, PEER_SSH_USER) as set by
``eval "$(bash test/peer/sshd.sh start)"``:

    /usr/bin/python3 test/peer/mitogen_bench.py --ssh [--quick] [--only NAME[,NAME]]

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
import mitogen.parent

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


# --- SSH benchmarks (--ssh) --------------------------------------------------
#
# The same keys as `test/peer/mitogo --ssh`. Mitogen keeps nothing on the far
# side between connections: every router.ssh() sends the first stage (in
# ssh's argv), the zlib'd mitogen.core (the "preamble") and then, on request,
# the modules the call needs. So "cached" and "first contact" differ only on
# the master's side: first contact uses a fresh Broker and Router, whose
# module responder has read and compressed nothing yet.

def ssh_kwargs():
    env = os.environ
    missing = [n for n in ('PEER_SSH_PORT', 'PEER_SSH_KEY', 'PEER_SSH_KNOWN_HOSTS')
               if not env.get(n)]
    if missing:
        raise SystemExit('mitogen_bench.py --ssh: %s not set (run test/peer/sshd.sh start)'
                         % ', '.join(missing))
    return dict(
        hostname=env.get('PEER_SSH_HOST', '127.0.0.1'),
        port=int(env['PEER_SSH_PORT']),
        username=env.get('PEER_SSH_USER', 'root'),
        identity_file=env['PEER_SSH_KEY'],
        check_host_keys='enforce',
        # mitogen.ssh defaults to 'python', which Debian 12 lacks.
        python_path='/usr/bin/python3',
        # mitogen.ssh has no known_hosts keyword: pass it to ssh, and keep
        # the machine's ~/.ssh/config out as sshtest's SSHArgs does.
        ssh_args=['-F', '/dev/null',
                  '-o', 'UserKnownHostsFile=' + env['PEER_SSH_KNOWN_HOSTS'],
                  '-o', 'GlobalKnownHostsFile=/dev/null'],
    )


def read_wire():
    """The WAN relay's counts (compare_ssh.sh --wan; PEER_WAN_STATS names
    its stats file) once no connection is open, or None without a relay."""
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
            raise SystemExit('mitogen_bench.py: WAN relay stats %s: connections still open' % path)
        time.sleep(0.02)


def wire_keys(key, before, n):
    """KEY_wire_{up,down}_bytes per connection since before, with a relay."""
    after = read_wire()
    if before is None or after is None or not n:
        return {}
    return {
        key + '_wire_up_bytes': (after['up_bytes'] - before['up_bytes']) // n,
        key + '_wire_down_bytes': (after['down_bytes'] - before['down_bytes']) // n,
        key + '_wire_conns': after['closed'] - before['closed'],
    }


def _ssh_connect_call(router):
    t0 = now_ns()
    ctx = router.ssh(**ssh_kwargs())
    ctx.call(nop)
    ms = (now_ns() - t0) / 1e6
    shutdown(ctx)
    return ms


def bench_ssh_connect(router, cfg):
    _ssh_connect_call(router)   # untimed: the master reads its sources once
    wire = read_wire()
    samples = [_ssh_connect_call(router) for _ in range(cfg.connects)]
    LOG.info('ssh_connect_cached samples (ms): %s', [round(s, 1) for s in samples])
    out = {
        'ssh_connect_cached_ms': round(median(samples), 1),
        'ssh_connect_cached_n': len(samples),
        'ssh_connect_cached_samples': [round(s, 1) for s in samples],
    }
    out.update(wire_keys('ssh_connect_cached', wire, cfg.connects))
    return out


class _BootBytes(object):
    """Counts what the master sends to bootstrap a child: the first stage
    (the -c argument of python in ssh's argv) and the compressed core
    (the preamble). Module bytes come from the router's responder."""

    def __init__(self):
        self.first_stage = 0
        self.preamble = 0
        cls = mitogen.parent.Connection
        self._orig = (cls.get_boot_command, cls.get_preamble)
        counter = self

        def get_boot_command(conn):
            argv = counter._orig[0](conn)
            counter.first_stage = len(argv[-1])
            return argv

        def get_preamble(conn):
            data = counter._orig[1](conn)
            counter.preamble = len(data)
            return data

        cls.get_boot_command = get_boot_command
        cls.get_preamble = get_preamble

    def restore(self):
        cls = mitogen.parent.Connection
        cls.get_boot_command, cls.get_preamble = self._orig


def bench_ssh_first(router, cfg):
    samples = []
    sent = None
    wire = read_wire()
    for _ in range(cfg.firsts):
        broker = mitogen.master.Broker()
        r = mitogen.master.Router(broker, max_message_size=MAX_MESSAGE_SIZE)
        counter = _BootBytes()
        try:
            samples.append(_ssh_connect_call(r))
            stats = r.get_stats()
            sent = {
                'first_stage': counter.first_stage,
                'preamble': counter.preamble,
                'modules': stats['good_load_module_size'],
            }
        finally:
            counter.restore()
            broker.shutdown()
            broker.join()
    LOG.info('ssh_connect_first samples (ms): %s; bytes %s', [round(s, 1) for s in samples], sent)
    out = {
        'ssh_connect_first_ms': round(median(samples), 1),
        'ssh_connect_first_n': len(samples),
        'ssh_connect_first_samples': [round(s, 1) for s in samples],
        'ssh_first_bytes': sum(sent.values()),
        'ssh_first_bytes_parts': sent,
    }
    out.update(wire_keys('ssh_connect_first', wire, cfg.firsts))
    return out


def bench_ssh_call(router, cfg):
    ctx = router.ssh(**ssh_kwargs())
    try:
        samples, total_ms = _time_calls(ctx, cfg.calls)
    finally:
        shutdown(ctx)
    return {
        'ssh_call_us': round(median(samples), 1),
        'ssh_call_n': len(samples),
        'ssh_call_total_ms': round(total_ms, 1),
    }


def bench_ssh_sudo_call(router, cfg):
    ctx = router.ssh(**ssh_kwargs())
    sctx = None
    try:
        sctx = router.sudo(via=ctx, username=cfg.sudo_user)
        samples, total_ms = _time_calls(sctx, cfg.calls)
    finally:
        if sctx is not None:
            shutdown(sctx)
        shutdown(ctx)
    return {
        'ssh_sudo_call_us': round(median(samples), 1),
        'ssh_sudo_call_n': len(samples),
        'ssh_sudo_call_total_ms': round(total_ms, 1),
    }


def _ssh_parallel_once(router, n):
    ctxs = [None] * n
    errors = []
    go = threading.Event()

    def worker(i):
        go.wait()
        try:
            c = router.ssh(**ssh_kwargs())
            ctxs[i] = c
            c.call(nop)
        except Exception as e:  # noqa: counted as lost
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
            try:
                shutdown(c)
            except Exception as e:  # noqa
                LOG.warning('shutdown %r: %s', c, e)
    return elapsed_ms, errors


def bench_ssh_parallel20(router, cfg):
    samples, lost, first_err = [], [], None
    for i in range(cfg.par_runs):
        if i:
            time.sleep(0.5)   # let sshd reap the last run's sessions
        ms, errors = _ssh_parallel_once(router, 20)
        samples.append(ms)
        lost.append(len(errors))
        for e in errors:
            LOG.info('ssh_parallel20: lost: %s: %s', type(e).__name__, e)
        if errors and first_err is None:
            first_err = '%s: %s' % (type(errors[0]).__name__, errors[0])
    LOG.info('ssh_parallel20 samples (ms): %s; lost %s', [round(s, 1) for s in samples], lost)
    out = {
        'ssh_parallel20_ms': round(median(samples), 1),
        'ssh_parallel20_n': len(samples),
        'ssh_parallel20_samples': [round(s, 1) for s in samples],
        'ssh_parallel20_lost': max(lost),   # the worst run
        'ssh_parallel20_lost_runs': lost,
    }
    if first_err:
        out['ssh_parallel20_error'] = first_err[:500]
    return out


SSH_BENCHES = [
    ('ssh_connect', bench_ssh_connect),
    ('ssh_first', bench_ssh_first),
    ('ssh_call', bench_ssh_call),
    ('ssh_sudo_call', bench_ssh_sudo_call),
    ('ssh_parallel20', bench_ssh_parallel20),
]

SSH_ALIASES = {
    'ssh_connect_cached_ms': 'ssh_connect', 'ssh_connect_cached': 'ssh_connect',
    'ssh_connect_first_ms': 'ssh_first', 'ssh_first_bytes': 'ssh_first',
    'ssh_connect_first': 'ssh_first', 'ssh_call_us': 'ssh_call',
    'ssh_sudo_call_us': 'ssh_sudo_call', 'ssh_parallel20_ms': 'ssh_parallel20',
    'ssh_parallel20_lost': 'ssh_parallel20',
}


def main(router, cfg, only, benches=BENCHES):
    result = {
        'impl': 'mitogen',
        'mitogen_version': '.'.join(map(str, mitogen.__version__)),
        'python': sys.version.split()[0],
        'quick': cfg.quick,
    }
    if cfg.ssh:
        result['ssh_target'] = '%(username)s@%(hostname)s:%(port)d' % ssh_kwargs()
    for name, fn in benches:
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
    ap.add_argument('--ssh', action='store_true',
                    help='the SSH benchmarks instead: ' +
                    ','.join(n for n, _ in SSH_BENCHES) +
                    ' (needs PEER_SSH_* from test/peer/sshd.sh)')
    ap.add_argument('--sudo-user', default='mitogo-test',
                    help='user of the ssh->sudo chain (--ssh)')
    ap.add_argument('--rounds', type=int, default=0,
                    help='timed connects of ssh_connect and ssh_first (--ssh; default 10, 3 and 2 with --quick)')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    benches = SSH_BENCHES if args.ssh else BENCHES
    aliases = SSH_ALIASES if args.ssh else ALIASES

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format='%(asctime)s %(name)s %(levelname)s %(message)s')

    only = set()
    for n in filter(None, (s.strip() for s in args.only.split(','))):
        n = aliases.get(n, n)
        if n not in dict(benches):
            ap.error('unknown benchmark %r' % n)
        only.add(n)

    cfg = argparse.Namespace(
        quick=args.quick,
        runs=3 if args.quick else 15,
        calls=200 if args.quick else 2000,
        big_runs=1 if args.quick else 3,
        par_runs=1 if args.quick else 3,
        ssh=args.ssh,
        connects=args.rounds or (3 if args.quick else 10),
        firsts=args.rounds or (2 if args.quick else 10),
        sudo_user=args.sudo_user,
    )
    # Default max_message_size is 128 MiB, which a 64 MiB bytes argument
    # exceeds once pickled (see bench_bytes64); children inherit this value.
    broker = mitogen.master.Broker()
    router = mitogen.master.Router(broker, max_message_size=MAX_MESSAGE_SIZE)
    try:
        res = main(router, cfg, only, benches)
    finally:
        broker.shutdown()
        broker.join()
    sys.stdout.write(json.dumps(res, sort_keys=True) + '\n')
    sys.stdout.flush()
