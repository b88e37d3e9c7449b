#!/usr/bin/python3
"""Print one table from the JSON results of the peer benchmarks.

    table.py FLOOR.json MITOGO.json MITOGEN.json [HEADER]

A file that is missing or empty counts as "not run". stdlib only.
"""

import json
import os
import sys

# The floor and Mitogen have no deadline on a call: mitogo's calls with a
# deadline compare with their plain calls.
SAME_AS = {'call_deadline_us': 'call_us', 'call_deadline_total_ms': 'call_total_ms'}

# (key, unit, higher_is_better)
METRICS = [
    ('start_first_call_us', 'us', False),
    ('call_us', 'us', False),
    ('call_total_ms', 'ms', False),
    ('call_deadline_us', 'us', False),
    ('call_deadline_total_ms', 'ms', False),
    ('bytes64_mbps', 'MB/s', True),
    ('chain3_call_us', 'us', False),
    ('chain3_call_total_ms', 'ms', False),
    ('parallel20_ms', 'ms', False),
    ('rss_master_kb', 'kB', False),
    ('rss_master_hwm_kb', 'kB', False),
    ('rss_child_kb', 'kB', False),
    ('rss_child_hwm_kb', 'kB', False),
]


def load(path):
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as fp:
        return json.load(fp)


def fmt(v, unit):
    if v is None:
        return '-'
    if unit == 'kB':
        return '%d' % v
    return '%.1f' % v


def ratio(num, den):
    if num is None or den is None or den == 0:
        return '-'
    return '%.2f' % (float(num) / float(den))


def main():
    floor, mitogo, mitogen = (load(p) for p in sys.argv[1:4])
    header = sys.argv[4] if len(sys.argv) > 4 else ''
    get = lambda res, k: None if res is None else res.get(k)

    cols = ['metric', 'floor', 'mitogo', 'mitogen', 'mitogo/floor', 'mitogen/mitogo']
    rows = []
    for key, unit, higher in METRICS:
        other = SAME_AS.get(key, key)
        f, g, m = get(floor, other), get(mitogo, key), get(mitogen, other)
        if (f is None and g is None and m is None) or (key in SAME_AS and g is None):
            continue
        if higher:   # throughput: invert so the meaning stays the same
            rf, rm = ratio(f, g) + ' *', ratio(g, m) + ' *'
        else:
            rf, rm = ratio(g, f), ratio(m, g)
        rows.append(['%s (%s)' % (key, unit), fmt(f, unit), fmt(g, unit), fmt(m, unit), rf, rm])

    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
    line = lambda r: '| ' + ' | '.join(
        c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
        for i, c in enumerate(r)) + ' |'
    if header:
        print(header)
    versions = []
    if mitogo:
        versions.append('mitogo: %s' % mitogo.get('go', '?'))
    if mitogen:
        versions.append('mitogen %s on python %s' % (
            mitogen.get('mitogen_version', '?'), mitogen.get('python', '?')))
    if any(r and r.get('quick') for r in (floor, mitogo, mitogen)):
        versions.append('QUICK run (fewer repetitions)')
    if versions:
        print('; '.join(versions))
    print(line(cols))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for r in rows:
        print(line(r))
    print()
    print('mitogo/floor > 1: mitogo is slower (or bigger) than the bare floor by that factor.')
    print('mitogen/mitogo > 1: mitogo is faster (or smaller) than Mitogen by that factor.')
    print('* throughput (higher is better): inverted, i.e. floor/mitogo and mitogo/mitogen,')
    print('  so that both ratio columns keep the meaning above.')
    if mitogen is None:
        print('mitogen: not run (python3-mitogen not installed, or skipped by --only).')
    if floor is not None and 'chain3_call_us' not in floor:
        print('floor has no chain3 (a bare socketpair has no routing).')


if __name__ == '__main__':
    main()
