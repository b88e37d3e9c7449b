#!/usr/bin/python3
"""Peak RSS and CPU time of the far side of a copy, for push_bench.sh.

    /usr/bin/python3 test/peer/rss_peak.py ROOT_PID OUT_FILE

Every 0.1 s it walks the processes below ROOT_PID (the benchmark's sshd
listener: every process a session starts is below it) through
/proc/PID/task/PID/children, with no process started per sample, and keeps
the highest VmHWM (the kernel's own peak, so a sample only has to come
while the process lives) of each. On SIGTERM it writes to OUT_FILE one line:
the highest VmHWM in KiB of a process that is not sshd and that process's
name, then the highest of sshd's session processes (e.g. "8123 rsync 7012");
0 and "-" for what it did not see. The sessions are apart: sshd.sh serves
sftp (scp's protocol) with internal-sftp, in sshd's processes. Then the CPU
time (user + system, seconds) of the processes that are not sshd, and of
sshd's session processes, each as last seen (up to 0.1 s before the end).

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


TICK = 100.0  # USER_HZ: /proc/PID/stat's clock ticks per second on Linux


def cpu(pid):
    try:
        with open('/proc/%d/stat' % pid) as fp:
            f = fp.read().rsplit(')', 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


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
    cpus = {}  # pid: (is sshd, seconds)
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
            c = cpu(pid)
            if c is not None:
                cpus[pid] = (name == 'sshd', c)
            if name == 'sshd':
                sessions = max(sessions, hwm)
            elif hwm > best[0]:
                best = [hwm, name]
        if stop:
            break
        time.sleep(0.1)
    with open(out, 'w') as fp:
        fp.write('%d %s %d %.2f %.2f\n' % (
            best[0], best[1], sessions,
            sum(c for s, c in cpus.values() if not s),
            sum(c for s, c in cpus.values() if s)))


if __name__ == '__main__':
    main()
