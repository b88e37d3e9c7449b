#!/usr/bin/python3
"""Peak RSS of the far side of a copy, for push_bench.sh.

    /usr/bin/python3 test/peer/rss_peak.py ROOT_PID OUT_FILE

Every 0.1 s it walks the processes below ROOT_PID (the benchmark's sshd
listener: every process a session starts is below it) through
/proc/PID/task/PID/children, with no process started per sample, and keeps
the highest VmHWM (the kernel's own peak, so a sample only has to come
while the process lives) of each. On SIGTERM it writes to OUT_FILE one line:
the highest VmHWM in KiB of a process that is not sshd and that process's
name, then the highest of sshd's session processes (e.g. "8123 rsync 7012");
0 and "-" for what it did not see. The sessions are apart: sshd.sh serves
sftp (scp's protocol) with internal-sftp, in the session process itself.

The same sampler runs during every tool's copy, so its CPU (small: a few
/proc reads per sample) costs each of them alike.
"""

import signal
import sys
import time


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as fp:
            return [int(p) for p in fp.read().split()]
    except OSError:
        return []


def status(pid):
    name, hwm = None, None
    try:
        with open('/proc/%d/status' % pid) as fp:
            for line in fp:
                if line.startswith('Name:'):
                    name = line.split(None, 1)[1].strip()
                elif line.startswith('VmHWM:'):
                    hwm = int(line.split()[1])
                    break
    except OSError:
        pass
    return name, hwm


def main():
    root, out = int(sys.argv[1]), sys.argv[2]
    best = [0, '-']
    sessions = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while True:
        todo = children(root)
        while todo:
            pid = todo.pop()
            todo.extend(children(pid))
            name, hwm = status(pid)
            if not hwm:
                continue
            if name == 'sshd':
                sessions = max(sessions, hwm)
            elif hwm > best[0]:
                best = [hwm, name]
        if stop:
            break
        time.sleep(0.1)
    with open(out, 'w') as fp:
        fp.write('%d %s %d\n' % (best[0], best[1], sessions))


if __name__ == '__main__':
    main()
