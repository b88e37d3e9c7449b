#!/usr/bin/python3
"""Print one table from the JSON results of the SSH peer benchmarks.

    table_ssh.py OPENSSH.json MITOGO.json MITOGEN.json [HEADER]

A file that is missing or empty counts as "not run". stdlib only.
"""

import json
import os
import sys

# (label, openssh key, key of mitogo and mitogen, unit)
ROWS = [
    ('ssh_connect_cached_ms', 'ssh_true_ms', 'ssh_connect_cached_ms', 'ms'),
    ('  same, vs ssh with curve25519 kex', 'ssh_true_curve25519_ms', 'ssh_connect_cached_ms', 'ms'),
    ('ssh_connect_first_ms', 'ssh_true_ms', 'ssh_connect_first_ms', 'ms'),
    ('ssh_first_bytes', None, 'ssh_first_bytes', 'B'),
    ('ssh_connect_rebuild_ms (after a one-string rebuild)', 'ssh_true_ms', 'ssh_connect_rebuild_ms', 'ms'),
    ('ssh_rebuild_bytes', None, 'ssh_rebuild_bytes', 'B'),
    ('  after a rebuild: bytes sent through the WAN relay', 'ssh_true_wire_up_bytes', 'ssh_connect_rebuild_wire_up_bytes', 'B'),
    ('  cached connect: bytes sent through the WAN relay', 'ssh_true_wire_up_bytes', 'ssh_connect_cached_wire_up_bytes', 'B'),
    ('  cached connect: bytes received through it', 'ssh_true_wire_down_bytes', 'ssh_connect_cached_wire_down_bytes', 'B'),
    ('  first contact: bytes sent through the WAN relay', 'ssh_true_wire_up_bytes', 'ssh_connect_first_wire_up_bytes', 'B'),
    ('  first contact: bytes received through it', 'ssh_true_wire_down_bytes', 'ssh_connect_first_wire_down_bytes', 'B'),
    ('ssh_call_us', 'ssh_floor_us', 'ssh_call_us', 'us'),
    ('ssh_call_total_ms', None, 'ssh_call_total_ms', 'ms'),
    ('ssh_sudo_call_us', None, 'ssh_sudo_call_us', 'us'),
    ('ssh_sudo_call_total_ms', None, 'ssh_sudo_call_total_ms', 'ms'),
    ('ssh_parallel20_ms', None, 'ssh_parallel20_ms', 'ms'),
    ('ssh_parallel20_lost', None, 'ssh_parallel20_lost', 'of 20'),
]


def load(path):
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as fp:
        return json.load(fp)


def fmt(v, unit):
    if v is None:
        return '-'
    if unit in ('B', 'of 20'):
        return '%d' % v
    return '%.1f' % v


def ratio(num, den):
    if num is None or den is None or den == 0:
        return '-'
    return '%.2f' % (float(num) / float(den))


def main():
    openssh, mitogo, mitogen = (load(p) for p in sys.argv[1:4])
    header = sys.argv[4] if len(sys.argv) > 4 else ''
    get = lambda res, k: None if res is None or k is None else res.get(k)

    cols = ['metric', 'openssh', 'mitogo', 'mitogen', 'mitogo/openssh', 'mitogen/mitogo']
    rows = []
    for label, okey, key, unit in ROWS:
        o, g, m = get(openssh, okey), get(mitogo, key), get(mitogen, key)
        if okey == 'ssh_floor_us':
            o = get(mitogo, okey)  # measured by the mitogo program: cat through sshd
        if g is None and m is None:
            continue
        counts = unit == 'of 20'
        rows.append(['%s (%s)' % (label, unit) if not label.startswith(' ') else label,
                     fmt(o, unit), fmt(g, unit), fmt(m, unit),
                     '-' if counts else ratio(g, o), '-' if counts else ratio(m, g)])

    if header:
        print(header)
    versions = []
    if openssh:
        versions.append(openssh.get('openssh_version', '?').split(',')[0])
    if mitogo:
        versions.append('mitogo: %s' % mitogo.get('go', '?'))
    if mitogen:
        versions.append('mitogen %s on python %s' % (
            mitogen.get('mitogen_version', '?'), mitogen.get('python', '?')))
    if any(r and r.get('quick') for r in (openssh, mitogo, mitogen)):
        versions.append('QUICK run (fewer repetitions)')
    if versions:
        print('; '.join(versions))
    if not rows:
        print('(no SSH results)')
        return
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
    line = lambda r: '| ' + ' | '.join(
        c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
        for i, c in enumerate(r)) + ' |'
    print(line(cols))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for r in rows:
        print(line(r))
    print()
    print('openssh column: `ssh ARGS true` (ssh_true_ms; the curve25519 row: the same with')
    print('  -o KexAlgorithms=curve25519-sha256, the exchange mitogo gets from this sshd);')
    print('  in the ssh_call_us row, the bare floor: the same frames echoed by `cat` in an')
    print('  x/crypto/ssh session through the same sshd, no runtime.')
    print('mitogo/openssh < 1: mitogo connects and answers a call faster than ssh runs `true`.')
    print('mitogen/mitogo > 1: mitogo is faster (or smaller) than Mitogen by that factor.')
    print('ssh_first_bytes: mitogo sends its image, gzipped in pieces (near) or its xz form (far); Mitogen its first stage,')
    print('  zlib\'d core and the modules the first call needs (before ssh compression).')
    print('ssh_parallel20_lost: connections failed in the worst of the runs.')
    if get(mitogo, 'ssh_connect_first_wire_up_bytes') is not None:
        print('WAN relay rows: bytes per connection through the relay (SSH\'s own framing,')
        print('  encryption and, for Mitogen\'s ssh, its compression included).')

    # The targets.
    checks = []
    g = get(mitogo, 'ssh_connect_cached_ms')
    o = get(openssh, 'ssh_true_ms')
    m = get(mitogen, 'ssh_connect_cached_ms')
    if g is not None and o:
        checks.append(('connect+first call (cached) <= 1.1x ssh host true',
                       '%.2fx' % (g / o), g <= 1.1 * o))
    if g is not None and m:
        checks.append(("connect+first call (cached) faster than Mitogen's ssh()",
                       '%.2fx faster' % (m / g), g < m))
    gf, mf = get(mitogo, 'ssh_connect_first_ms'), get(mitogen, 'ssh_connect_first_ms')
    if gf is not None and mf:
        checks.append(("first contact <= 1.5x Mitogen's ssh() + call (the WAN link's target)",
                       '%.2fx' % (gf / mf), gf <= 1.5 * mf))
    gr = get(mitogo, 'ssh_connect_rebuild_ms')
    if gr is not None and mf:
        checks.append(("after a rebuild <= Mitogen's ssh() + call",
                       '%.2fx' % (gr / mf), gr <= mf))
    gc, fl = get(mitogo, 'ssh_call_us'), get(mitogo, 'ssh_floor_us')
    if gc is not None and fl:
        checks.append(('call over ssh <= 1.3x the bare floor (frames echoed by cat through sshd)',
                       '%.2fx' % (gc / fl), gc <= 1.3 * fl))
    lost = get(mitogo, 'ssh_parallel20_lost_runs')
    if lost is not None:
        checks.append(('20 at once: mitogo loses none', 'lost %s' % lost, max(lost) == 0))
    if checks:
        print()
        print('targets:')
        for what, val, ok in checks:
            print('  %s  %s: %s' % ('PASS' if ok else 'FAIL', what, val))
    for name, res in (('mitogo', mitogo), ('mitogen', mitogen)):
        err = get(res, 'ssh_parallel20_error')
        if err:
            print('%s ssh_parallel20 lost %s per run; first error: %s' % (
                name, res.get('ssh_parallel20_lost_runs'), err.strip().splitlines()[-1]))
    if mitogen is None:
        print('mitogen: not run (python3-mitogen not installed, or skipped).')
    if openssh is None:
        print('openssh: not run.')


if __name__ == '__main__':
    main()
